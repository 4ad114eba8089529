"""CLI sub-commands beyond train/search/demo; see evo_nas.cli.COMMAND_MODULES."""
