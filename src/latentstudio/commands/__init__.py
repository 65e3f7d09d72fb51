"""CLI subcommands. Library code never imports from here."""
