"""Offline stand-in for rules_shell: the native sh_binary of Bazel 4.2.3."""

def sh_binary(**kwargs):
    native.sh_binary(**kwargs)  # buildifier: disable=native-sh-binary
