namespace Connectias.Sandbox;

/// <summary>The permissions of SPEC §1. A plugin gets only those the administrator's policy grants.</summary>
public enum Permission
{
    Network,
    Storage,
    SystemInfo,
}

public static class Permissions
{
    /// <summary>The canonical spelling, used on the wire and in the audit log.</summary>
    public static string WireName(this Permission permission) => permission switch
    {
        Permission.Network => "network",
        Permission.Storage => "storage",
        Permission.SystemInfo => "system_info",
        _ => throw new ArgumentOutOfRangeException(nameof(permission), permission, null),
    };

    /// <summary>
    /// Accepts the canonical names and the PascalCase spellings SPEC §1 also allows
    /// (<c>Network</c>, <c>Storage</c>, <c>SystemInfo</c>); nothing else.
    /// </summary>
    public static bool TryParse(string text, out Permission permission)
    {
        switch (text)
        {
            case "network" or "Network":
                permission = Permission.Network;
                return true;
            case "storage" or "Storage":
                permission = Permission.Storage;
                return true;
            case "system_info" or "SystemInfo":
                permission = Permission.SystemInfo;
                return true;
            default:
                permission = default;
                return false;
        }
    }
}
