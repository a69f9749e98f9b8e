package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"sibling-run/runner"
)

func TestBindModeSharesTheWorkdirAtItsOwnPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := siblingRun(t, dir, nil, buildArgs("sh", "-c", "pwd; cat in.txt; echo from the build > out.txt")...)
	if r.code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	if want := dir + "\nfrom the host\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.txt"))
	if err != nil || string(got) != "from the build\n" {
		t.Errorf("out.txt written by the build: %q, %v; want %q", got, err, "from the build\n")
	}
}

// A comma in a path is no mount option: a working directory, a -v bind
// (read-only) and a --cache whose paths hold one are mounted as they are.
func TestPathsWithACommaAreMounted(t *testing.T) {
	label := cacheCase(t)
	dir := filepath.Join(t.TempDir(), "build,1 a")
	host := filepath.Join(t.TempDir(), "in,put")
	for _, d := range []string{dir, host} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, host, "file", []byte("from the host\n"))
	script := "pwd; cat /h,x/file; touch /h,x/new 2>/dev/null && echo host writable; echo kept > /c,d/f; echo out > out.txt"
	out := mustRun(t, dir, nil, buildArgs("--label", label, "-v", host+":/h,x:ro", "--cache", "/c,d", "sh", "-c", script)...)
	if want := dir + "\nfrom the host\n"; out != want {
		t.Errorf("the build printed %q, want %q (the bind read-only)", out, want)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(got) != "out\n" {
		t.Errorf("out.txt written by the build: %q, %v", got, err)
	}
	if out := mustRun(t, dir, nil, buildArgs("--label", label, "--cache", "/c,d", "cat", "/c,d/f")...); out != "kept\n" {
		t.Errorf("the next build's cache at /c,d holds %q, want kept", out)
	}
	// A mistyped host path with a comma is refused, as without one; sent
	// as Binds, Docker would make the directory on its host instead. Podman
	// takes such a path only as Binds, and makes it: a known gap
	// (docs/podman.md), so this part runs in the Docker pass.
	if engine == "podman" {
		return
	}
	typo := filepath.Join(filepath.Dir(host), "in,putt")
	r := siblingRun(t, dir, nil, buildArgs("--label", label, "-v", typo+":/h,x:ro", "true")...)
	if r.code != 125 {
		t.Errorf("-v with a missing host path: exit %d, want 125; stderr:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Errorf("the missing host path %s was made on the host (%v)", typo, err)
	}
}

func TestWorkdirDefaultsToBambooWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	r := siblingRun(t, "/", []string{"bamboo_build_working_directory=" + dir}, buildArgs("pwd")...)
	if r.code != 0 || r.stdout != dir+"\n" {
		t.Errorf("pwd in the build: %q (exit %d), want %q; stderr:\n%s", r.stdout, r.code, dir+"\n", r.stderr)
	}
}

func TestBothStreamsArriveByteForByteAfterAFastExit(t *testing.T) {
	dir := t.TempDir()
	out := randomBytes(t, 24<<20)
	errOut := randomBytes(t, 3<<20)
	writeFile(t, dir, "out.bin", out)
	writeFile(t, dir, "err.bin", errOut)
	// The build exits the instant it has written, with an unterminated last
	// write on each stream: every byte must still arrive, on its own stream.
	r := siblingRun(t, dir, nil, buildArgs("sh", "-c", "cat out.bin; cat err.bin >&2; printf tail; printf errtail >&2; exit 3")...)
	if r.code != 3 {
		t.Fatalf("exit code %d, want 3", r.code)
	}
	if want := string(out) + "tail"; r.stdout != want {
		t.Errorf("stdout: got %d bytes, want %d; equal prefix %v", len(r.stdout), len(want), strings.HasPrefix(want, r.stdout))
	}
	// stderr also carries sibling-run's own lines, after the build's bytes
	// start; the build's bytes must be there whole and in order.
	if !strings.Contains(r.stderr, string(errOut)+"errtail") {
		t.Errorf("stderr lacks the build's %d bytes intact (got %d bytes)", len(errOut)+7, len(r.stderr))
	}
}

// A command that cannot be started gives docker run's codes, with or without
// an init process. (The build's own codes 0-255 and signals are in the
// reliability suite.)
func TestCommandThatCannotStartGives126Or127(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"command not found, with init", []string{"no-such-command"}, runner.ExitNotFound},
		{"command not found, without init", []string{"--no-init", "no-such-command"}, runner.ExitNotFound},
		{"cannot invoke, with init", []string{"/etc/passwd"}, runner.ExitCannotInvoke},
		{"cannot invoke, without init", []string{"--no-init", "/etc/passwd"}, runner.ExitCannotInvoke},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, dir, nil, buildArgs(tc.args...)...)
			if r.code != tc.want {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tc.want, r.stderr)
			}
		})
	}
	if left := containersWith(t, testLabel); len(left) > 0 {
		t.Errorf("%d siblings left after the runs", len(left))
	}
}

func TestOutOfMemorySaysSoAndExits137(t *testing.T) {
	r := siblingRun(t, t.TempDir(), nil, buildArgs("--memory", "16m", "sh", "-c", `x=$(head -c 200m /dev/zero | tr "\0" a); echo survived`)...)
	if r.code != 137 {
		t.Fatalf("exit code %d, want 137; stderr:\n%s", r.code, r.stderr)
	}
	// Podman does not record the kill (OOMKilled stays false), so there
	// sibling-run can only say it is likely; Docker does, and then it is sure.
	want := "the build ran out of memory"
	if engine == "podman" {
		want = "it likely ran out of memory"
	}
	if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "16MiB") {
		t.Errorf("stderr does not say %q at 16MiB:\n%s", want, r.stderr)
	}
}

func TestOnlyChosenVariablesReachTheBuild(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "vars.env", []byte("# a comment\nFROM_FILE=file value\nOVERRIDDEN=from file\n\nCOPIED_IN_FILE\n"))
	env := []string{
		"bamboo_planKey=PROJ-PLAN",
		"bamboo_buildResultKey=PROJ-PLAN-JOB1-7",
		"COPIED=copied value",
		"COPIED_IN_FILE=via file",
		"NOT_PASSED=leak",
	}
	r := siblingRun(t, dir, env, buildArgs("--env-file", "vars.env", "-e", "OVERRIDDEN=from flag", "-e", "COPIED", "-e", "WITH_COMMA=a,b", "-e", "UNSET_HERE", "env")...)
	if r.code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		got[line] = true
	}
	for _, want := range []string{
		"bamboo_planKey=PROJ-PLAN", "bamboo_buildResultKey=PROJ-PLAN-JOB1-7", "FROM_FILE=file value",
		"OVERRIDDEN=from flag", "COPIED=copied value", "COPIED_IN_FILE=via file", "WITH_COMMA=a,b",
	} {
		if !got[want] {
			t.Errorf("build's environment lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, banned := range []string{"NOT_PASSED", "UNSET_HERE", "DOCKER_HOST", "OVERRIDDEN=from file"} {
		if strings.Contains(r.stdout, banned) {
			t.Errorf("build's environment has %q:\n%s", banned, r.stdout)
		}
	}
}

func TestDryRunPrintsTheSpecMaskedAndCreatesNothing(t *testing.T) {
	r := siblingRun(t, t.TempDir(), []string{"bamboo_deploy_password=hunter2", "bamboo_buildResultKey=PROJ-PLAN-9"},
		buildArgs("--dry-run", "--memory", "1g", "--cpus", "1.5", "make", "-j4")...)
	if r.code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "hunter2") {
		t.Errorf("dry run shows a secret's value:\n%s", r.stdout)
	}
	var spec struct {
		Name   string
		Config struct {
			Cmd    []string
			Env    []string
			Labels map[string]string
		}
		HostConfig struct {
			Memory    int64
			NanoCpus  int64
			LogConfig struct{ Type string }
			Init      *bool
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &spec); err != nil {
		t.Fatalf("dry run printed no JSON spec: %v\n%s", err, r.stdout)
	}
	if strings.Join(spec.Config.Cmd, " ") != "make -j4" || spec.HostConfig.Memory != 1<<30 || spec.HostConfig.NanoCpus != 1_500_000_000 ||
		spec.HostConfig.LogConfig.Type != "none" || spec.HostConfig.Init == nil || !*spec.HostConfig.Init {
		t.Errorf("spec does not match the flags: %+v", spec)
	}
	if spec.Config.Labels[runner.LabelBuildKey] != "PROJ-PLAN-9" || !strings.Contains(spec.Name, "PROJ-PLAN-9") {
		t.Errorf("spec lacks the build key in its labels or name: %q %v", spec.Name, spec.Config.Labels)
	}
	if !contains(spec.Config.Env, "bamboo_deploy_password=********") {
		t.Errorf("masked secret missing from the spec's env: %v", spec.Config.Env)
	}
	assertCreatedNothing(t, r)
}

func TestSecretsReachTheBuildButNotTheLog(t *testing.T) {
	r := siblingRun(t, t.TempDir(), []string{"bamboo_deploy_password=hunter2"}, buildArgs("--log-level", "debug", "sh", "-c", "echo $bamboo_deploy_password")...)
	if r.stdout != "hunter2\n" {
		t.Errorf("the build got %q, want the real value", r.stdout)
	}
	if strings.Contains(r.stderr, "hunter2") || !strings.Contains(r.stderr, "bamboo_deploy_password=********") {
		t.Errorf("sibling-run's debug log shows the secret, or no masked entry:\n%s", r.stderr)
	}
}

func TestInteractiveForwardsStdin(t *testing.T) {
	cmd := siblingRunCommand(t.TempDir(), nil, buildArgs("-i", "sh", "-c", "wc -l; cat")...)
	cmd.Stdin = strings.NewReader("one\ntwo\nthree\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sibling-run -i: %v", err)
	}
	if strings.TrimSpace(string(out)) != "3" {
		t.Errorf("build read %q from stdin, want a count of 3", out)
	}
}

func TestTTYGivesTheBuildATerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("the tty test needs script(1) from util-linux")
	}
	// script(1) runs sibling-run on a pseudo-terminal, as a developer's shell would.
	line := strings.Join(append([]string{binary}, buildArgs("-it", "sh", "-c", "'test -t 0 && test -t 1 && echo on-a-tty'")...), " ")
	cmd := exec.Command(script, "-qec", line, "/dev/null")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("on-a-tty")) {
		t.Errorf("sibling-run -it: %v\n%s", err, out)
	}
}

// -it puts the user's terminal into raw mode; every way out must restore it.
func TestTerminalIsRestoredOnEveryExit(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("the tty test needs script(1) from util-linux")
	}
	for _, tc := range []struct{ name, run string }{
		{"success", "SR true"},
		{"failure", "SR sh -c 'exit 3'"},
		{"SIGTERM", "timeout --foreground -s TERM 2 SR sleep 60"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sr := strings.Join(append([]string{binary}, buildArgs("-it")...), " ")
			inner := "stty -g > before; " + strings.ReplaceAll(tc.run, "SR", sr) + "; stty -g > after"
			cmd := exec.Command(script, "-qec", "sh -c \""+inner+"\"", "/dev/null")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			before, _ := os.ReadFile(filepath.Join(dir, "before"))
			after, _ := os.ReadFile(filepath.Join(dir, "after"))
			if len(before) == 0 || string(before) != string(after) {
				t.Errorf("terminal settings before %q, after %q", before, after)
			}
			// A raw terminal passes "\n" on as it is; a restored one makes it
			// "\r\n". Each of sibling-run's lines, the last above all, must be
			// written to a restored terminal, or the next starts mid-line.
			lines := strings.Split(string(out), "\n")
			logged := 0
			for _, line := range lines[:len(lines)-1] {
				if !strings.Contains(line, "[sibling-run]") {
					continue
				}
				logged++
				if !strings.HasSuffix(line, "\r") {
					t.Errorf("sibling-run wrote a line to a raw terminal: %q", line)
				}
			}
			if logged == 0 {
				t.Errorf("no line of sibling-run's on the terminal:\n%q", out)
			}
		})
	}
}

func TestKeepLeavesTheSiblingWithItsLabels(t *testing.T) {
	r := siblingRun(t, t.TempDir(), []string{"bamboo_buildResultKey=PROJ-KEEP-1"}, buildArgs("--keep", "true")...)
	if r.code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	kept := containersWith(t, testLabel, runner.LabelKeep+"=true")
	if len(kept) != 1 {
		t.Fatalf("%d kept siblings, want 1", len(kept))
	}
	defer api.ContainerRemove(context.Background(), kept[0].ID, container.RemoveOptions{Force: true})
	if !strings.Contains(r.stderr, kept[0].ID) {
		t.Errorf("stderr does not name the kept sibling %s:\n%s", kept[0].ID, r.stderr)
	}
	labels := kept[0].Labels
	if labels[runner.LabelManaged] != "true" || labels[runner.LabelBuildKey] != "PROJ-KEEP-1" ||
		!strings.HasPrefix(labels[runner.LabelOwner], "host:") || labels[runner.LabelOwnerPID] == "" || labels[runner.LabelOwnerStart] == "" {
		t.Errorf("kept sibling's labels are incomplete: %v", labels)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The docker-run-like flags reach the sibling and change what the build sees.
func TestFlagsShapeTheSibling(t *testing.T) {
	dir, otherDir := t.TempDir(), t.TempDir()
	initName := "docker-init" // Docker's init, tini
	if engine == "podman" {
		initName = "podman-init" // Podman's, catatonit, bound in under that name
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"--user", []string{"--user", "1234:5678", "sh", "-c", "echo $(id -u):$(id -g)"}, "1234:5678"},
		{"--entrypoint", []string{"--entrypoint", "/bin/echo", "from", "echo"}, "from echo"},
		{"--network none", []string{"--network", "none", "ls", "/sys/class/net"}, "lo"},
		{"--memory", []string{"--memory", "256m", "sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"}, "268435456"},
		{"--init is PID 1", []string{"sh", "-c", "cat /proc/1/comm"}, initName},
		{"--no-init", []string{"--no-init", "sh", "-c", "cat /proc/1/comm; true"}, "sh"},
		{"--workdir", []string{"--workdir", otherDir, "pwd"}, otherDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, dir, nil, buildArgs(tc.args...)...)
			if r.code != 0 || strings.TrimSpace(r.stdout) != tc.want {
				t.Errorf("got %q (exit %d), want %q; stderr:\n%s", r.stdout, r.code, tc.want, r.stderr)
			}
		})
	}
}

func TestVersionNamesTheTool(t *testing.T) {
	r := siblingRun(t, "/", nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sibling-run ") {
		t.Errorf("version: %q (exit %d)", r.stdout, r.code)
	}
}

// -it with input that is not a terminal (a pipe, /dev/null: a developer's
// command pasted into a script task) is refused before anything is created:
// with a terminal the engine would end the build's output with its input,
// and the task would pass with an empty log. -t alone needs no terminal and
// loses nothing.
func TestInteractiveTerminalNeedsATerminal(t *testing.T) {
	build := []string{"sh", "-c", "echo hi; sleep 0.5; echo late; exit 3"}
	for _, tc := range []struct {
		name  string
		stdin func() *os.File
	}{
		{"stdin at EOF (/dev/null)", func() *os.File { return nil }},
		{"stdin a pipe", func() *os.File {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			w.Close()
			t.Cleanup(func() { r.Close() })
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := siblingRunCommand(t.TempDir(), nil, buildArgs(append([]string{"-it"}, build...)...)...)
			if in := tc.stdin(); in != nil {
				cmd.Stdin = in
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 125 || !strings.Contains(stderr.String(), "the input device is not a TTY") {
				t.Errorf("exit %d (want 125 and a word about the TTY); stdout %q, stderr:\n%s", code, stdout.String(), stderr.String())
			}
			if strings.Contains(stderr.String(), "starting the build") {
				t.Errorf("the build was started:\n%s", stderr.String())
			}
			if left := containersWith(t, testLabel, runner.LabelOwnerPID+"="+strconv.Itoa(cmd.Process.Pid)); len(left) > 0 {
				t.Errorf("a sibling was left")
			}
		})
	}
	t.Run("-t alone, nothing a terminal", func(t *testing.T) {
		r := siblingRun(t, t.TempDir(), nil, buildArgs(append([]string{"-t"}, build...)...)...)
		if r.code != 3 || !hasLine(r.stdout, "hi") || !hasLine(r.stdout, "late") {
			t.Errorf("exit %d, stdout %q; want 3 and both lines; stderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})
}
