return Connectias.Sandbox.Cli.CliApp.Run(args, Console.Out, Console.Error);
