package integration

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The doc test: every command block of README.md, CONTRIBUTING.md and
// docs/*.md runs, in order, as an admin following the docs on a fresh
// machine would run it, so that a doc command that fails fails CI.
//
// A block tagged sh (bash, shell; console: its "$ " lines) runs with
// bash -euo pipefail: in the repository's root, or in a small Go project
// of the test's (a build's working directory) when its first line is a
// sibling-run command. Before it runs, it gets the generic substitutions
// (docHarness.substitutions: images that would come from a registry, the
// registry, paths outside the test's reach, agent names that could be a
// real agent's), and the entry of docBlockEntries for its file and first
// line, if it has one. Untagged and text blocks are illustrations and run
// nowhere, so they must not look like commands.

// docBlockKey names a block by its file and its first line as written.
type docBlockKey struct{ file, firstLine string }

// docBlockEntry is what one block needs beyond the generic substitutions.
type docBlockEntry struct {
	reason  string      // why: shown in the test's log
	replace [][2]string // old → new in the block as written; each old must occur
	before  string      // lines run before the block, in the same shell
	env     []string    // added to the block's environment
	dir     string      // "scratch": a new empty directory instead of the default; "project": the Go project
	// tlsEngine starts an engine over TCP with TLS for the block (the TLS
	// tests' private one, with the block's images loaded) and gives the
	// block its address and client certificates as $DOC_TLS_HOST and
	// $DOC_TLS_CERTS.
	tlsEngine bool
}

// docBlockEntries are the blocks that cannot run with the generic
// substitutions alone. An entry whose block is gone, or whose replace no
// longer matches, fails the test.
var docBlockEntries = map[docBlockKey]docBlockEntry{
	{"README.md", "scripts/demo.sh     # builds the agent, data and Go images, starts an agent pair,"}: {
		reason:  "scripts/test.sh is the whole suite this test is part of: instead, check that CI (.ci/run) runs exactly that command, with go test's -v",
		replace: [][2]string{{"scripts/test.sh", "grep -qx 'exec scripts/test.sh -v' .ci/run"}},
	},
	{"README.md", "install -m 0644 scripts/systemd/*.service /etc/systemd/system/"}:          {reason: systemdStandInReason},
	{"docs/agent-host.md", "install -m 0644 scripts/systemd/*.service /etc/systemd/system/"}: {reason: systemdStandInReason},
	{"README.md", `CGO_ENABLED=0 go build -ldflags "-s -w -X main.version=$(git describe --always)" -o /usr/local/bin/sibling-run ./cmd/sibling-run`}: {
		reason:  "-it needs a terminal on stdin: script(1) gives it one, and `exit` is typed into the shell",
		replace: [][2]string{{"sibling-run -it --image golang:1.26 sh", "printf 'exit\\n' | script -qefc 'sibling-run -it --image golang:1.26 sh' /dev/null"}},
	},
	{"docs/after-the-build.md", "ln -s /var/atlassian/application-data/bamboo-agent/bamboo-agent.cfg.xml target/surefire-reports/TEST-a.xml"}: {
		reason: "what a hostile build runs in its working directory, not an admin's command: run in an empty directory with target/surefire-reports, as a Maven build would have it",
		before: "mkdir -p target/surefire-reports",
		dir:    "scratch",
	},
	{"docs/agent-host.md", "(cd scripts/fcos/butane && go build -o /usr/local/bin/butane github.com/coreos/butane/internal)"}: {
		reason:  "the ignition file goes to a temporary directory, not into the checkout",
		replace: [][2]string{{"> build-host.ign", `> "$TMPDIR/build-host.ign"`}},
	},
	{"docs/engines.md", "d=$(mktemp -d /tmp/sibling-run-docker29.XXXXXX)"}: {
		reason: "the whole suite on Docker 29 is CI's second pass: here one small test (-run), on the engine the block starts; the engine is built first if missing (scripts/test.sh builds it before the first pass), and stopped if the block fails",
		replace: [][2]string{{"go test -count=1 -timeout 30m ./cmd/sibling-run/integration/",
			"go test -count=1 -timeout 30m -run '^TestBindModeSharesTheWorkdirAtItsOwnPath$' ./cmd/sibling-run/integration/"}},
		before: `scripts/docker29-service.sh build >/dev/null
trap '[ -z "${d:-}" ] || [ ! -d "$d" ] || scripts/docker29-service.sh stop "$d"' EXIT`,
	},
	{"README.md", "DOCKER_HOST=tcp://builder.example.internal:2376 DOCKER_TLS_VERIFY=1 \\"}: {
		reason:    "a build on a remote engine: the TLS tests' private engine, which cannot see the project, stands in for builder.example.internal, with the project's Go image loaded",
		replace:   [][2]string{{"tcp://builder.example.internal:2376", "$DOC_TLS_HOST"}, {"/etc/sibling-run/tls", "$DOC_TLS_CERTS"}},
		env:       []string{"SIBLING_RUN_NETWORK=none"},
		dir:       "project",
		tlsEngine: true,
	},
	{"docs/performance.md", "scripts/bench.sh > bench.md          # about 13 minutes with the defaults"}: {
		reason:  "the full table takes 13 minutes: both lines run the lifecycle row only, with one pair; the table goes to a temporary directory, not into the checkout",
		replace: [][2]string{{"> bench.md", `> "$TMPDIR/bench.md"`}},
		env:     []string{"BENCH_ROWS=lifecycle", "BENCH_PAIRS=1"},
	},
}

// systemdStandInReason is what the systemd blocks run against.
const systemdStandInReason = "no systemd here (PID 1 is not systemd): systemctl is the test's stand-in (systemctlStandIn), " +
	"which checks the installed units with systemd-analyze verify and does what enable --now and restart would start " +
	"with scripts/agent.sh (up; stop and up), reading the units' agent.env; the units' own Exec lines do not run"

// docBlockTimeout bounds one block: the longest, the demo, takes about two
// minutes with its images built; a block that hangs (waits for input, a
// wait without a bound) fails here instead of at go test's -timeout.
const docBlockTimeout = 10 * time.Minute

func TestDocCommandBlocksRun(t *testing.T) {
	firstPassOnly(t, "it tests the docs, not the engine; the Docker 29 block starts an engine of its own")
	root, err := filepath.Abs(repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	files, err := docFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []docBlock
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		found, err := parseDocBlocks(f, data)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, found...)
	}
	var commands []docBlock
	seen := map[docBlockKey]bool{}
	for _, b := range blocks {
		switch {
		case b.isCommands():
			commands = append(commands, b)
			seen[docBlockKey{b.file, b.firstLine()}] = true
		case b.lang == "" || b.lang == "text":
			if lines := commandLines(b); len(lines) > 0 {
				t.Errorf("%s: an untagged block holds what reads as commands, which no test runs:\n\t%s\nTag it ```sh so that this test runs it, or reword it if it is an illustration (```text, no command lines).",
					b.where(), strings.Join(lines, "\n\t"))
			}
		}
	}
	for key, entry := range docBlockEntries {
		if !seen[key] {
			t.Errorf("docBlockEntries has an entry for a block that is gone: %s starting %q; remove it (or key it by the block's new first line)", key.file, key.firstLine)
			continue
		}
		for _, b := range commands {
			if b.file == key.file && b.firstLine() == key.firstLine {
				for _, r := range entry.replace {
					if !strings.Contains(b.text, r[0]) {
						t.Errorf("%s: the entry of docBlockEntries replaces %q, which the block no longer holds; update the entry", b.where(), r[0])
					}
				}
			}
		}
	}
	if t.Failed() {
		return
	}

	h := newDocHarness(t, root)
	started := time.Now()
	var took []string
	for _, b := range commands {
		ok := t.Run(b.where(), func(t *testing.T) {
			d := h.run(t, b)
			took = append(took, fmt.Sprintf("%-28s %6.1fs  %s", b.where(), d.Seconds(), b.firstLine()))
		})
		if !ok && b.file == "README.md" {
			// The later blocks build on the README's setup; their failures
			// would only repeat this one.
			t.Logf("stopping after the README's block %s failed", b.where())
			break
		}
	}
	t.Logf("%d blocks in %s:\n%s", len(took), time.Since(started).Round(time.Second), strings.Join(took, "\n"))
}

// docHarness is the machine the blocks run on: the test's own HOME, TMPDIR
// and PATH, images built here under the names the substitutions give, a
// registry on loopback, a Go project, and a stand-in for systemctl.
type docHarness struct {
	root, tmp, home, project, bin string
	namespace                     string // of the images the blocks use: <namespace>/go:local
	golang                        string // stands in for golang:<version>
	instance                      string // the agent's N, instead of 1
	registry                      *testRegistry
	env                           []string
	subs                          []docSubstitution
	modified                      string // git status before, to find what a block leaves in the checkout
}

func newDocHarness(t *testing.T, root string) *docHarness {
	ctx := context.Background()
	tmp := t.TempDir()
	h := &docHarness{
		root: root, tmp: tmp,
		home:      filepath.Join(tmp, "home"),
		project:   filepath.Join(tmp, "project"),
		bin:       filepath.Join(tmp, "usr", "local", "bin"), // where the docs install binaries
		namespace: "sibling-run-doctest-" + runID,
		instance:  "doctest-" + runID,
	}
	h.golang = h.namespace + "/golang:local"
	for _, dir := range []string{h.home, h.bin, filepath.Join(tmp, "tmp"), filepath.Join(tmp, "etc", "systemd", "system")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.modified = h.gitStatus(t)

	// The registry, and the admin's docker login to it; the images the
	// blocks push to it go before it stops (cleanups run last first).
	h.registry = startRegistry(t)
	mustWrite(t, filepath.Join(h.home, ".docker", "config.json"), h.registry.authsConfig(h.registry.user, h.registry.password), 0o600)
	t.Cleanup(func() { h.removeImages(t) })

	// Images: the project's Go image (shared with the agent test), the
	// busybox image of TestMain, and stand-ins built on them.
	image := func(name string) string { return h.namespace + "/" + name }
	goImage := projectGoImage(t)
	for tag, source := range map[string]string{image("go:local"): goImage, image("busybox:local"): busyboxImage} {
		if err := api.ImageTag(ctx, source, tag); err != nil {
			t.Fatal(err)
		}
	}
	h.writeProject(t)
	proxy := filepath.Join(h.home, "go", "pkg", "mod", "cache", "download")
	inline := map[string][]byte{"Dockerfile": []byte(fmt.Sprintf("FROM %s\nCOPY goproxy /goproxy\nENV GOPROXY=file:///goproxy\n", goImage))}
	if err := filepath.WalkDir(proxy, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(proxy, path)
		inline["goproxy/"+rel], err = os.ReadFile(path)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// golang: would fetch modules from the module proxy, which builds cannot
	// reach here: the stand-in carries the project's modules as a file proxy.
	if err := buildImage(ctx, h.golang, inline, nil); err != nil {
		t.Fatal(err)
	}
	// Services: a server on the image's port, which the readiness check finds.
	for name, port := range map[string]int{"postgres": 5432, "redis": 6379} {
		dockerfile := fmt.Sprintf("FROM %s\nEXPOSE %d\nCMD [\"nc\", \"-ll\", \"-p\", \"%d\", \"-e\", \"true\"]\n", busyboxImage, port, port)
		if err := buildImage(ctx, image(name+":local"), map[string][]byte{"Dockerfile": []byte(dockerfile)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	standin := filepath.Join(root, "images", "agent-base-standin")
	dockerfile, err := os.ReadFile(filepath.Join(standin, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := buildImage(ctx, image("bamboo-agent-base:standin"), map[string][]byte{"Dockerfile": dockerfile},
		map[string]string{"agent": filepath.Join(standin, "agent"), "busybox": "/bin/busybox"}); err != nil {
		t.Fatal(err)
	}

	// The binaries on PATH: sibling-run (until the README's go build
	// replaces it) and systemctl.
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeExecutable(filepath.Join(h.bin, "sibling-run"), string(data)); err != nil {
		t.Fatal(err)
	}
	if err := writeExecutable(filepath.Join(h.bin, "systemctl"), fmt.Sprintf(systemctlStandIn,
		filepath.Join(tmp, "etc", "systemd", "system"), filepath.Join(tmp, "etc", "bamboo-agent", "agent.env"), root)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.removeAgents(t) })

	h.env = h.environment(t)
	h.subs = h.substitutions()
	return h
}

// substitutions are what every block gets. Add one here when a name in a
// doc needs what this machine lacks, so that every block using it runs.
func (h *docHarness) substitutions() []docSubstitution {
	q := regexp.QuoteMeta
	return []docSubstitution{
		{"golang:<version>: the project's Go image with the project's modules as its GOPROXY",
			regexp.MustCompile(`\bgolang:[0-9][0-9.]*(-[a-z0-9]+)?\b`), h.golang},
		{"postgres:<version>, redis:<version>: busybox's nc on the port the image exposes",
			regexp.MustCompile(`\b(postgres|redis):[0-9][0-9.]*\b`), h.namespace + "/${1}:local"},
		{"the Bamboo agent base image: images/agent-base-standin",
			regexp.MustCompile(`\batlassian/bamboo-agent-base:\S+`), h.namespace + "/bamboo-agent-base:standin"},
		{"sibling-run/NAME:local, the scripts' default images: the test's",
			regexp.MustCompile(`(^|[\s"'=])sibling-run/([a-z0-9${}_-]+):local\b`), "${1}" + h.namespace + "/${2}:local"},
		{"your registry: the test's, on loopback",
			regexp.MustCompile(q("registry.example.internal")), h.registry.addr},
		{"agent N's names: the test's own, never a real agent's",
			regexp.MustCompile(`(scripts/agent\.sh [a-z]+) 1\b`), "${1} " + h.instance},
		{"agent N's units", regexp.MustCompile(`\b(bamboo-agent(-data)?)([@.])1\b`), "${1}${3}" + h.instance},
		{"cache prune and reap: only what this test made", regexp.MustCompile(`\bsibling-run (cache prune|reap)\b`),
			"sibling-run $1 --label " + testLabel},
		{"system paths: the test's", regexp.MustCompile(`(^|[\s=])(/etc/bamboo-agent|/etc/systemd/system|/usr/local/bin)\b`),
			"${1}" + h.tmp + "${2}"},
		{"your project", regexp.MustCompile(q("~/src/project")), h.project},
	}
}

// environment is the blocks' environment: the test's own HOME, TMPDIR and
// PATH; the host's Go caches (pure caches: sharing them saves minutes);
// and the scripts' knobs set to the test's images, labels and names.
func (h *docHarness) environment(t *testing.T) []string {
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPROXY", "GOFLAGS").Output()
	if err != nil {
		t.Fatal(err)
	}
	goenv := strings.Split(string(out), "\n")
	engines := os.Getenv("SIBLING_RUN_ENGINE_CACHE")
	if engines == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		engines = filepath.Join(cache, "sibling-run", "engines")
	}
	image := func(name string) string { return h.namespace + "/" + name }
	env := []string{
		"HOME=" + h.home, "TMPDIR=" + filepath.Join(h.tmp, "tmp"), "PATH=" + h.bin + ":" + os.Getenv("PATH"),
		"GOCACHE=" + goenv[0], "GOMODCACHE=" + goenv[1], "GOPROXY=" + goenv[2], "GOFLAGS=" + goenv[3],
		"SIBLING_RUN_ENGINE_CACHE=" + engines, // Docker 29's binaries, built once
		"BUSYBOX_IMAGE=" + image("busybox:local"), "GO_IMAGE=" + image("go:local"),
		"AGENT_BASE_IMAGE=" + image("bamboo-agent-base:standin"), "AGENT_IMAGE=" + image("bamboo-agent:local"),
		"AGENT_DATA_IMAGE=" + image("bamboo-agent-data:local"), "BENCH_IMAGE=" + image("busybox:local"),
		"BENCH_GO_IMAGE=" + image("go:local"), "AGENT_IMAGE_VERSION=demo",
		"IMAGE_LABEL=" + testLabel, "AGENT_LABELS=" + testLabel, "SIBLING_RUN_LABEL=" + testLabel,
		"AGENT_PULL=never", "AGENT_STOP_TIMEOUT=5", // no registry holds the agent image
		"DEMO_NAME=" + h.instance + "-demo", "DEMO_IMAGE_NAMESPACE=" + h.namespace,
		"bamboo_image=" + h.golang, // a plan variable, as Bamboo passes it
	}
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		env = append(env, "DOCKER_HOST="+host)
	}
	return env
}

// writeProject makes ~/src/project: writeGoProject's module, and a test of
// the services of docs/services.md (-tags integration); its modules go into
// $HOME/go/pkg/mod, where caches.md finds them.
func (h *docHarness) writeProject(t *testing.T) {
	mustWrite(t, filepath.Join(h.project, "services_test.go"), `//go:build integration

package main

import (
	"net"
	"testing"
	"time"
)

func TestServices(t *testing.T) {
	for _, addr := range []string{"postgres:5432", "cache:6379"} {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}
`, 0o644)
	writeGoProject(t, h.project, filepath.Join(h.home, "go", "pkg", "mod"))
}

// run runs one block and fails t, with all a reader needs, if it fails.
func (h *docHarness) run(t *testing.T, b docBlock) time.Duration {
	entry, hasEntry := docBlockEntries[docBlockKey{b.file, b.firstLine()}]
	script := b.script()
	for _, r := range entry.replace {
		script = strings.ReplaceAll(script, r[0], r[1])
	}
	script = substitute(script, h.subs)
	if entry.before != "" {
		script = entry.before + "\n" + script
	}
	dir := h.root
	switch {
	case entry.dir == "scratch":
		dir = t.TempDir()
	case entry.dir == "project" || strings.HasPrefix(b.firstLine(), "sibling-run "):
		dir = h.project
	}
	env := append(h.env[:len(h.env):len(h.env)], entry.env...)
	if entry.tlsEngine {
		e := startTLSEngine(t)
		e.loadImage(h.golang)
		env = append(env, "DOC_TLS_HOST="+e.host, "DOC_TLS_CERTS="+e.certs)
	}
	if hasEntry {
		t.Logf("%s: %s", b.where(), entry.reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), docBlockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 10 * time.Second // a background child that keeps the output open
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	t.Logf("%s took %.1fs", b.where(), took.Seconds())
	if err == nil {
		if left := h.gitStatus(t); left != h.modified {
			t.Errorf("%s left files in the checkout (git status before:\n%s\nafter:\n%s)", b.where(), h.modified, left)
		}
		return took
	}
	how := "To fix: if the doc is wrong, fix the doc (or the script it calls). If the block needs what no doc reader lacks but this test does\n" +
		"(a terminal, systemd, a shorter run), add an entry to docBlockEntries in cmd/sibling-run/integration/doc_test.go:\n" +
		fmt.Sprintf("\t{%q, %q}: {reason: \"why\", replace: [][2]string{{\"as written\", \"as run\"}}},\n", b.file, b.firstLine()) +
		"If a name in it needs a registry or a path outside the test's reach, add a generic substitution (docHarness.substitutions)."
	if hasEntry {
		how = "Its entry in docBlockEntries (" + entry.reason + ") did not make it pass: if the doc is wrong, fix the doc; else the entry."
	}
	t.Errorf("%s: the block failed (%v) after %.1fs.\n--- as written:\n%s--- as run, in %s:\n%s\n--- its output:\n%s\n%s",
		b.where(), err, took.Seconds(), b.text, dir, script, out.String(), how)
	return took
}

func (h *docHarness) gitStatus(t *testing.T) string {
	cmd := exec.Command("git", "status", "--porcelain", "--ignored")
	cmd.Dir = h.root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git status in %s: %v", h.root, err)
	}
	return string(out)
}

// removeAgents removes the agent pairs the blocks started and the caches
// their builds kept.
func (h *docHarness) removeAgents(t *testing.T) {
	for _, n := range []string{h.instance, h.instance + "-demo"} {
		if out, code := scriptResult(h.env, "agent.sh", "down", n); code != 0 {
			t.Errorf("agent.sh down %s: exit %d\n%s", n, code, out)
		}
	}
	siblingRun(t, h.tmp, nil, "cache", "prune", "--all", "--label", testLabel)
}

// removeImages removes every image the blocks tagged (the test's namespace,
// the registry's) and the agent image's Go stages left by the builder.
func (h *docHarness) removeImages(t *testing.T) {
	ctx := context.Background()
	prefixes := []string{h.namespace + "/"}
	if h.registry != nil {
		prefixes = append(prefixes, h.registry.addr+"/")
	}
	for _, prefix := range prefixes {
		if _, err := removeImagesTagged(ctx, prefix); err != nil {
			t.Error(err)
		}
	}
	if err := removeGoStages(ctx); err != nil {
		t.Error(err)
	}
}
