namespace Connectias.Sandbox.TestSupport;

/// <summary>
/// A valid ABI v1 module whose plugin_execute is <c>depth</c> nested empty blocks: a few megabytes that take the
/// compiler gigabytes (2.5 million blocks took 4.4 GB in the hardening round). Made here, byte by byte, because a
/// text file of it would be as large as the binary and say no more than this.
/// </summary>
public static class CompileBomb
{
    public static byte[] Module(int depth)
    {
        var module = new List<byte> { 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00 };
        // Types: (i32) -> i32 for connectias_alloc, (i32 i32 i32 i32) -> i32 for plugin_execute.
        Section(module, 1, [0x02, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f]);
        Section(module, 3, [0x02, 0x00, 0x01]);
        Section(module, 5, [0x01, 0x00, 0x01]); // one memory of one page
        var exports = new List<byte> { 0x03 };
        Export(exports, "memory", 0x02, 0);
        Export(exports, "connectias_alloc", 0x00, 0);
        Export(exports, "plugin_execute", 0x00, 1);
        Section(module, 7, exports);

        var alloc = new List<byte> { 0x00, 0x41, 0x80, 0x08, 0x0b }; // no locals; i32.const 1024; end
        var execute = new List<byte>(3 * depth + 4) { 0x00 };
        for (var i = 0; i < depth; i++) execute.AddRange([0x02, 0x40]); // block (empty type)
        for (var i = 0; i < depth; i++) execute.Add(0x0b); // end
        execute.AddRange([0x41, 0x00, 0x0b]); // i32.const 0; end
        var code = new List<byte> { 0x02 };
        Sized(code, alloc);
        Sized(code, execute);
        Section(module, 10, code);
        // A custom section of random bytes: the blocks alone compress 300:1, past a package's zip-bomb check.
        var noise = new List<byte>();
        Sized(noise, "noise"u8.ToArray());
        noise.AddRange(System.Security.Cryptography.RandomNumberGenerator.GetBytes(64 * 1024));
        Section(module, 0, noise);
        return [.. module];
    }

    private static void Export(List<byte> exports, string name, byte kind, byte index)
    {
        Sized(exports, System.Text.Encoding.UTF8.GetBytes(name));
        exports.Add(kind);
        exports.Add(index);
    }

    private static void Section(List<byte> module, byte id, IReadOnlyCollection<byte> content)
    {
        module.Add(id);
        Sized(module, content);
    }

    private static void Sized(List<byte> into, IReadOnlyCollection<byte> content)
    {
        var length = (uint)content.Count;
        do
        {
            var part = (byte)(length & 0x7f);
            length >>= 7;
            into.Add(length == 0 ? part : (byte)(part | 0x80));
        }
        while (length != 0);
        into.AddRange(content);
    }
}
