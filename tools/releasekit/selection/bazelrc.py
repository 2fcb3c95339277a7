"""What a `.bazelrc` change can change: the options that differ between two revisions, and their reach.

A `.bazelrc` line is `command[:config] option...`; `import` and `try-import` bring in other files (read at
the same revision; a missing one is empty). The options of every command and config are compared as
multisets, so reordering changes nothing. Each changed option falls in one class:
- no effect on any build or test result (output, UI, caching locations, commands that build nothing), nor on what
  collect's own queries answer: selects nothing. A `query`, `cquery` or `aquery` line changes no build, but it can
  change what a query answers: one setting an option collect passes on every query itself (bazelquery.py's
  FIXED_QUERY_OPTIONS, such as --tool_deps) selects nothing, any other (--deleted_packages, ...) everything;
- a language's compile or link options: that language's targets in the target configuration, and their rdeps;
- the same options of the exec configuration (`--host_copt`, ...): the targets of that language that the build
  builds as tools, and their rdeps (found by bazelrc_reach.py);
- test-only options: the tests;
- anything else: everything, naming the option.
Options under `test` (and `coverage`) reach only tests; configs (`build:ci`) count as if they were used.
"""

import re
import shlex

_IMPORT_RE = re.compile(r"^\s*(try-)?import\s+(\S+)\s*$")
_WORKSPACE_IMPORT_RE = re.compile(r"^\s*(?:try-)?import\s+%workspace%/(\S+)", re.MULTILINE)
# Commands whose options cannot change what `bazel build` and `bazel test` produce, nor what collect's queries answer.
_NO_EFFECT_COMMANDS = frozenset(["info", "clean", "shutdown", "version", "dump", "fetch", "sync", "help", "run",
                                 "startup", "canonicalize-flags", "license", "print_action"])
# Commands collect runs itself: their options build nothing, but may change what its queries answer.
_QUERY_COMMANDS = frozenset(["query", "cquery", "aquery"])
_TEST_COMMANDS = frozenset(["test", "coverage"])
_NO_EFFECT = frozenset([
    "announce_rc", "color", "curses", "verbose_failures", "show_progress", "show_progress_rate_limit",
    "show_timestamps", "show_result", "show_loading_progress", "progress_report_interval", "ui_event_filters",
    "experimental_ui_max_stdouterr_bytes", "test_output", "test_summary", "keep_going", "jobs", "local_cpu_resources",
    "local_ram_resources", "local_resources", "disk_cache", "remote_cache", "remote_timeout", "remote_max_connections",
    "remote_upload_local_results", "remote_accept_cached", "remote_local_fallback", "build_event_json_file",
    "build_event_binary_file", "build_event_text_file", "bes_backend", "bes_results_url", "bes_timeout", "profile",
    "generate_json_trace_profile", "experimental_generate_json_trace_profile", "tool_tag", "symlink_prefix",
    "experimental_convenience_symlinks", "watchfs", "heap_dump_on_oom", "logging", "noisy", "quiet",
    "build_event_publish_all_actions", "bes_upload_mode", "remote_header", "google_default_credentials",
    "credential_helper", "experimental_repository_cache_hardlinks", "repository_cache", "distdir", "max_idle_secs",
    "sandbox_debug", "verbose_explanations", "explain", "subcommands",
    # How many tests run at once, whether release targets build with them, and how test logs are shown.
    "local_test_jobs", "build_tests_only", "test_verbose_timeout_warnings", "print_relative_test_log_paths",
])
_TEST_ONLY = frozenset([
    "test_env", "test_arg", "test_timeout", "flaky_test_attempts", "runs_per_test", "test_strategy",
    "test_sharding_strategy", "test_tmpdir", "test_keep_going", "cache_test_results", "test_runner_fail_fast",
    "test_tag_filters", "test_size_filters", "test_timeout_filters", "test_lang_filters", "test_filter",
])
LANGUAGE_KINDS = {"java": "^(java_|kt_jvm_)", "cc": "^cc_"}
_LANGUAGE_OPTIONS = {
    "javacopt": "java", "jvmopt": "java", "java_language_version": "java", "java_runtime_version": "java",
    "java_header_compilation": "java", "experimental_java_classpath": "java",
    "copt": "cc", "cxxopt": "cc", "conlyopt": "cc", "linkopt": "cc", "per_file_copt": "cc", "dynamic_mode": "cc",
    "strip": "cc", "stripopt": "cc", "fission": "cc",
}


def options(read, path, seen=None):
    """[(command, option)] of an rc file and the files it imports; read(path) gives text or None."""
    seen = set() if seen is None else seen
    if path in seen:
        return []
    seen.add(path)
    text = read(path)
    if text is None:
        return []
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        imported = _IMPORT_RE.match(line)
        if imported:
            target = imported.group(2).replace("%workspace%/", "")
            found += options(read, target, seen)
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        if len(words) < 2:
            continue
        command = words[0].split(":", 1)[0]
        index = 1
        while index < len(words):
            word = words[index]
            # `--name value` and `--name=value` are one option.
            takes_next = index + 1 < len(words) and not words[index + 1].startswith("-")
            if word.startswith("--") and "=" not in word and takes_next:
                word = "{}={}".format(word, words[index + 1])
                index += 1
            found.append((command, word))
            index += 1
    return found


def rc_files(read_base, read_head):
    """.bazelrc and the workspace's files it imports, at either revision: the files whose options are compared."""
    return {".bazelrc"} | workspace_imports(read_base, ".bazelrc") | workspace_imports(read_head, ".bazelrc")


def workspace_imports(read, path):
    """The workspace's files an rc file imports (`import %workspace%/...`), transitively."""
    found, pending = set(), [path]
    while pending:
        for imported in _WORKSPACE_IMPORT_RE.findall(read(pending.pop()) or ""):
            if imported not in found:
                found.add(imported)
                pending.append(imported)
    return found


def changed_reaches(read_base, read_head):
    """(reach, option name) of every option that differs in .bazelrc (and what it imports) between two revisions,
    each given as read(path): text or None."""
    before, after = options(read_base, ".bazelrc"), options(read_head, ".bazelrc")
    return [reach(command, option) for command, option in changed_options(before, after)]


def changed_options(base_options, head_options):
    """The (command, option) entries in one revision's multiset and not the other's."""
    remaining = list(base_options)
    added = []
    for entry in head_options:
        if entry in remaining:
            remaining.remove(entry)
        else:
            added.append(entry)
    return sorted(set(remaining + added))


# Options of the exec (host) configuration: they change the tools of that language built for the build's own use.
_EXEC_LANGUAGE_OPTIONS = {
    "host_javacopt": "java", "host_jvmopt": "java",
    "host_copt": "cc", "host_cxxopt": "cc", "host_conlyopt": "cc", "host_linkopt": "cc", "host_per_file_copt": "cc",
}


def reach(command, option):
    """('none' | 'tests' | ('language' | 'exec', lang, tests_only) | 'everything', the option's name)."""
    name = option.lstrip("-").split("=", 1)[0]
    if command in _NO_EFFECT_COMMANDS:
        return "none", name
    fixed = frozenset()
    if command in _QUERY_COMMANDS or command in ("common", "always"):  # only these reach query options
        from releasekit.selection.bazelquery import FIXED_QUERY_OPTIONS as fixed  # here: dispatch never queries
    bare = name[2:] if name.startswith("no") and name[2:] in _NO_EFFECT | _TEST_ONLY | fixed else name
    if bare in _NO_EFFECT or bare in fixed:
        return "none", name
    if command in _QUERY_COMMANDS:
        return "everything", name
    if bare in _TEST_ONLY:
        return "tests", name
    if name in _LANGUAGE_OPTIONS:
        return ("language", _LANGUAGE_OPTIONS[name], command in _TEST_COMMANDS), name
    if name in _EXEC_LANGUAGE_OPTIONS:
        return ("exec", _EXEC_LANGUAGE_OPTIONS[name], command in _TEST_COMMANDS), name
    return "everything", name
