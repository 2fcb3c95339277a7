"""Offline stand-in for rules_shell: the native sh_library of Bazel 4.2.3."""

def sh_library(**kwargs):
    native.sh_library(**kwargs)  # buildifier: disable=native-sh-library
