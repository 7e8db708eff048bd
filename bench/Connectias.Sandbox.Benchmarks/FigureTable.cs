using System.Globalization;

namespace Connectias.Sandbox.Benchmarks;

/// <summary>
/// One line of the summary: what was measured, the figure, its ratio to the baseline or to the goal,
/// and the goal itself with whether this run met it (null: no goal for this figure).
/// </summary>
internal sealed record Figure(string Section, string What, string Value, string Ratio, string Goal = "", bool? Met = null);

/// <summary>
/// Collects every figure of the run and prints them at the end as one Markdown table, so a run's
/// output can be pasted into docs/performance.md as it is. Each figure is also echoed as it is
/// measured, so a slow section shows progress.
/// </summary>
internal sealed class FigureTable
{
    private static readonly string[] Headers = ["#", "what", "figure", "ratio", "goal", "met"];
    private readonly List<Figure> _figures = [];

    public void Add(Figure figure)
    {
        _figures.Add(figure);
        Console.WriteLine($"  [{figure.Section}] {figure.What}: {figure.Value}{(figure.Ratio.Length > 0 ? $"; {figure.Ratio}" : "")}");
    }

    public void Print()
    {
        // Sections in order; within one, the order measured (OrderBy is stable).
        var rows = _figures.OrderBy(f => f.Section, StringComparer.Ordinal).Select(f => new[] { f.Section, f.What, f.Value, f.Ratio, f.Goal, f.Met switch { true => "yes", false => "NO", null => "" } }).ToList();
        var widths = Headers.Select((header, column) => rows.Select(row => row[column].Length).Append(header.Length).Max()).ToArray();
        Console.WriteLine(Line(Headers, widths));
        Console.WriteLine(Line(widths.Select(width => new string('-', width)).ToArray(), widths));
        foreach (var row in rows) Console.WriteLine(Line(row, widths));
    }

    private static string Line(string[] cells, int[] widths) =>
        "| " + string.Join(" | ", cells.Select((cell, column) => cell.PadRight(widths[column]))) + " |";
}

/// <summary>How figures are written in the table: one unit per kind of figure, invariant culture.</summary>
internal static class Show
{
    public static string Ns(double nanoseconds) => nanoseconds.ToString("N0", CultureInfo.InvariantCulture) + " ns";
    public static string Us(double microseconds) => microseconds.ToString("N0", CultureInfo.InvariantCulture) + " us";
    public static string Ms(double milliseconds) => milliseconds.ToString("N0", CultureInfo.InvariantCulture) + " ms";
    public static string Rate(double callsPerSecond) => callsPerSecond.ToString("N0", CultureInfo.InvariantCulture) + " calls/s";
    public static string MiB(long bytes) => (bytes / 1024.0 / 1024.0).ToString("N1", CultureInfo.InvariantCulture) + " MiB";
    public static string GiB(long bytes) => (bytes / 1024.0 / 1024.0 / 1024.0).ToString("N2", CultureInfo.InvariantCulture) + " GiB";
    public static string Times(double ratio) => ratio.ToString("N2", CultureInfo.InvariantCulture) + "x";
    public static string Percent(double share) => (share * 100).ToString("N0", CultureInfo.InvariantCulture) + "%";
    public static string PercentOfCore(double share) => (share * 100).ToString("N2", CultureInfo.InvariantCulture) + "% of a core";
}

/// <summary>Percentiles by nearest rank: always a measured sample, never an interpolation between two.</summary>
internal static class Percentile
{
    public static double Of(IReadOnlyCollection<double> samples, double fraction)
    {
        var sorted = samples.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(fraction * sorted.Length) - 1, 0, sorted.Length - 1)];
    }
}
