using System.Text;
using System.Text.Json;

namespace Connectias.Sandbox.Audit;

/// <summary>The outcome of checking an audit log: intact, or the first record that breaks the chain.</summary>
public sealed record AuditVerification(bool Intact, long Records, long? BadLine, long? BadSeq, string? Problem);

/// <summary>
/// Checks the hash chain of SPEC §6: every record's hash matches its bytes, every <c>prev</c> is the
/// previous record's hash, and <c>seq</c> counts up by one from 1. An edited, removed, inserted or
/// reordered record is reported at the first line where the chain breaks.
/// </summary>
public static class AuditVerifier
{
    private const string HashMember = ",\"hash\":\"";

    public static AuditVerification Verify(string path)
    {
        if (!File.Exists(path)) return new AuditVerification(false, 0, null, null, $"no audit log at {path}");
        var previous = AuditLog.Genesis;
        long expectedSeq = 1;
        long lineNumber = 0;
        var endsInsideRecord = EndsInsideRecord(path);
        using var lines = File.ReadLines(path, Encoding.UTF8).GetEnumerator();
        var more = lines.MoveNext();
        while (more)
        {
            var line = lines.Current;
            more = lines.MoveNext();
            lineNumber++;
            if (!more && endsInsideRecord)
                return Bad(lineNumber, null, "the log ends inside a record (a write cut short by a crash or a full disk); connectias-sandboxd cuts it off at its next start");
            if (line.Length == 0) continue;
            var at = line.LastIndexOf(HashMember, StringComparison.Ordinal);
            if (at < 0 || !line.EndsWith("\"}", StringComparison.Ordinal))
                return Bad(lineNumber, null, "the record has no hash");
            var claimed = line[(at + HashMember.Length)..^2];
            var withoutHash = line[..at] + "}";
            long? seq = null;
            string? prev;
            try
            {
                using var document = JsonDocument.Parse(line);
                seq = document.RootElement.GetProperty("seq").GetInt64();
                prev = document.RootElement.GetProperty("prev").GetString();
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                return Bad(lineNumber, seq, $"the record is not valid JSON with seq and prev ({e.Message})");
            }

            if (AuditLog.Hash(Encoding.UTF8.GetBytes(withoutHash)) != claimed)
                return Bad(lineNumber, seq, "its hash does not match its contents (the record was edited)");
            if (seq != expectedSeq)
                return Bad(lineNumber, seq, $"seq is {seq} where {expectedSeq} was expected (a record was removed, inserted or reordered)");
            if (prev != previous)
                return Bad(lineNumber, seq, "prev does not match the previous record's hash (a record was removed, inserted or reordered)");
            previous = claimed;
            expectedSeq++;
        }

        return new AuditVerification(true, expectedSeq - 1, null, null, null);

        AuditVerification Bad(long badLine, long? badSeq, string problem) =>
            new(false, expectedSeq - 1, badLine, badSeq, problem);
    }

    /// <summary>Whether the file's last byte is not the newline that ends every whole record.</summary>
    private static bool EndsInsideRecord(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (file.Length == 0) return false;
        file.Position = file.Length - 1;
        return file.ReadByte() != '\n';
    }
}
