"""Offline stand-in: nothing to set up."""

def rules_shell_dependencies():
    pass

def rules_shell_toolchains():
    pass
