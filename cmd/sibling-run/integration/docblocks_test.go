package integration

// The doc test's machinery (doc_test.go has the test and its table): finding
// the fenced blocks of the docs, the substitutions every command block gets,
// and the stand-ins the blocks run against.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// docBlock is one fenced block of a doc.
type docBlock struct {
	file string // relative to the repository's root, e.g. docs/caches.md
	line int    // the line of the block's first line in file
	lang string // the fence's tag: sh, text, or "" for none
	text string // the block's lines, each ending in a newline
}

func (b docBlock) where() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// firstLine is the block's first line as written: with the file, the key of
// its entry in docBlockEntries.
func (b docBlock) firstLine() string {
	first, _, _ := strings.Cut(b.text, "\n")
	return first
}

// isCommands says whether the block is commands to run; other blocks are
// illustrations (untagged, text) or another language's code.
func (b docBlock) isCommands() bool {
	switch b.lang {
	case "sh", "bash", "shell", "console":
		return true
	}
	return false
}

// script is what runs of the block: the block itself, or for a console block
// its "$ " lines without the prompt (the rest is output).
func (b docBlock) script() string {
	if b.lang != "console" {
		return b.text
	}
	var lines []string
	for _, l := range strings.Split(b.text, "\n") {
		if cmd, ok := strings.CutPrefix(l, "$ "); ok {
			lines = append(lines, cmd)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// docFiles are the docs whose blocks run: README.md, CONTRIBUTING.md and docs/*.md.
func docFiles(root string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		files[i], _ = filepath.Rel(root, f)
	}
	sort.Strings(files)
	return append([]string{"README.md", "CONTRIBUTING.md"}, files...), nil
}

var fenceOpen = regexp.MustCompile("^( *)(```+|~~~+)[ \t]*([A-Za-z0-9_+-]*)")

// parseDocBlocks returns the fenced blocks of a Markdown file; an unclosed
// fence is an error, since everything after it would silently be one block.
func parseDocBlocks(file string, data []byte) ([]docBlock, error) {
	var blocks []docBlock
	var open *docBlock
	var fence, indent string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if open == nil {
			if m := fenceOpen.FindStringSubmatch(line); m != nil {
				indent, fence = m[1], m[2]
				open = &docBlock{file: file, line: n + 1, lang: m[3]}
			}
			continue
		}
		if t := strings.TrimSpace(line); strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == "" {
			blocks = append(blocks, *open)
			open = nil
			continue
		}
		open.text += strings.TrimPrefix(line, indent) + "\n"
	}
	if open != nil {
		return nil, fmt.Errorf("%s:%d: a fenced block is never closed", file, open.line-1)
	}
	return blocks, sc.Err()
}

// commandLike matches a line of an illustration that reads as a command an
// admin would type: such a block must be tagged sh and run, or reworded.
var commandLike = regexp.MustCompile(`^\s*(\$ |(sudo|sibling-run|docker|podman|go|systemctl|apt-get|dnf|install|cd|export|git|make|curl|butane)\s|scripts/\S+\.sh\b|\./\S|[A-Z][A-Z0-9_]*=\S*\s+\S)`)

// commandLines are the lines of an illustration that look like commands.
func commandLines(b docBlock) []string {
	var found []string
	for _, l := range strings.Split(strings.TrimSuffix(b.text, "\n"), "\n") {
		if commandLike.MatchString(l) {
			found = append(found, l)
		}
	}
	return found
}

// docSubstitution is one rewrite every command block gets before it runs:
// a name that needs a registry, a path outside the test's reach, a name that
// could be a real agent's on a shared engine.
type docSubstitution struct {
	what string // for the report: what it stands for
	re   *regexp.Regexp
	with string // regexp.ReplaceAllString's template
}

// substitute applies subs in order.
func substitute(text string, subs []docSubstitution) string {
	for _, s := range subs {
		text = s.re.ReplaceAllString(text, s.with)
	}
	return text
}

// systemctlStandIn is the systemctl on the blocks' PATH: this test runs where
// systemd is not PID 1 (a container), so no unit can be started. It checks
// the installed units with systemd-analyze verify (daemon-reload), and does
// with scripts/agent.sh what the units would start: enable --now starts the
// pair (agent.sh up), restart replaces the agent (agent.sh stop, then up),
// as the unit's ExecStartPre and ExecStart do, with the environment file the
// units read. Anything else fails, so a
// doc that grows a new systemctl use is noticed here.
const systemctlStandIn = `#!/usr/bin/env bash
# The doc test's stand-in for systemctl (no systemd here): see docblocks_test.go.
set -euo pipefail
units=%q
env_file=%q # the units' EnvironmentFile
repo=%q
[ ! -f "$env_file" ] || { set -a; . "$env_file"; set +a; }
instance() { # the N of bamboo-agent@N.service
  case $1 in bamboo-agent@*.service) n=${1#bamboo-agent@}; echo "${n%%.service}" ;; *) echo "systemctl stand-in: no unit $1 known" >&2; exit 1 ;; esac
}
case ${1:-} in
  daemon-reload)
    check=$(mktemp -d)
    trap 'rm -rf "$check"' EXIT
    for unit in "$units"/*@.service; do cp "$unit" "$check/$(basename "${unit%%@.service}")@check.service"; done
    SYSTEMD_UNIT_PATH=$check: systemd-analyze verify --man=no "$check"/*.service
    ;;
  enable)
    [ "${2:-}" = --now ] || { echo "systemctl stand-in: only enable --now UNIT" >&2; exit 1; }
    n=$(instance "$3")
    [ -f "$units/bamboo-agent@.service" ] && [ -f "$units/bamboo-agent-data@.service" ] || { echo "systemctl stand-in: the units are not installed in $units" >&2; exit 1; }
    "$repo/scripts/agent.sh" up "$n"
    ;;
  restart)
    n=$(instance "$2")
    "$repo/scripts/agent.sh" stop "$n"
    "$repo/scripts/agent.sh" up "$n"
    ;;
  *) echo "systemctl stand-in: $* is not done by this stand-in" >&2; exit 1 ;;
esac
`

// writeExecutable writes an executable script.
func writeExecutable(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o755)
}

func TestDocBlocksAreFoundAndIllustrationsChecked(t *testing.T) {
	doc := "# T\n\n```sh\necho one\n```\n\n  ```\n  host ── engine\n  sibling-run --image x true\n  ```\n\n~~~text\nscripts/             the scripts\n~~~\n\n```console\n$ sibling-run version\nsibling-run v1\n```\n"
	blocks, err := parseDocBlocks("x.md", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		line     int
		lang     string
		commands bool
		script   string
		flagged  int
	}
	want := []got{
		{4, "sh", true, "echo one\n", 0},
		{8, "", false, "host ── engine\nsibling-run --image x true\n", 1},
		{13, "text", false, "scripts/             the scripts\n", 0},
		{17, "console", true, "sibling-run version\n", 2},
	}
	if len(blocks) != len(want) {
		t.Fatalf("found %d blocks, want %d: %+v", len(blocks), len(want), blocks)
	}
	for i, b := range blocks {
		g := got{b.line, b.lang, b.isCommands(), b.script(), len(commandLines(b))}
		if g != want[i] {
			t.Errorf("block %d: got %+v, want %+v", i, g, want[i])
		}
	}
	if _, err := parseDocBlocks("x.md", []byte("```sh\necho never closed\n")); err == nil {
		t.Error("an unclosed fence was not an error")
	}
}
