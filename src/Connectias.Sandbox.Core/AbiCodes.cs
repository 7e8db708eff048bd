namespace Connectias.Sandbox;

/// <summary>The negative results of host functions (SPEC §2).</summary>
public static class AbiCodes
{
    public const int NotFound = -1;
    public const int Denied = -2;
    public const int RateLimited = -3;
    public const int Timeout = -4;
    public const int TooLarge = -5;
    public const int IoFailure = -6;
    public const int BadRequest = -7;
    public const int AllocationFailed = -8;
}
