using System.Diagnostics;
using System.Globalization;

namespace Connectias.Sandbox.TestSupport;

/// <summary>Who owns a file, as stat(1) tells (of a link, the link itself): .NET has no API for the owner.</summary>
public static class FileOwner
{
    public static int Uid(string path)
    {
        using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true })!;
        var owner = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        return int.Parse(owner, CultureInfo.InvariantCulture);
    }
}
