package integration

// The reliability suite: the build's output arrives whole and on its own
// stream however it is written, every exit code passes through, and runs
// side by side on one engine keep to their own output and leave nothing.

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestOutputArrivesWholeUnderStress(t *testing.T) {
	dir := t.TempDir()
	tiny := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB, written a byte at a time
	writeFile(t, dir, "tiny.txt", tiny)
	numbered := func(prefix string, n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "%s%d\n", prefix, i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name           string
		script         string
		stdout, stderr string
	}{
		{
			"both streams at full speed at once",
			"seq 1 200000 | sed s/^/out/ & seq 1 200000 | sed s/^/err/ >&2 & wait",
			numbered("out", 200000), numbered("err", 200000),
		},
		{
			"many one-byte writes on both streams",
			"dd if=tiny.txt bs=1 2>/dev/null & dd if=tiny.txt bs=1 >&2 2>/dev/null & wait",
			string(tiny), string(tiny),
		},
		{
			"a 1 MiB line without a newline, then exit",
			`head -c 1048576 /dev/zero | tr '\0' o; head -c 1048576 /dev/zero | tr '\0' e >&2`,
			strings.Repeat("o", 1<<20), strings.Repeat("e", 1<<20),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// With --log-level error a passing run adds no line of its own,
			// so both streams must be exactly the build's bytes.
			r := siblingRun(t, dir, nil, buildArgs("--log-level", "error", "sh", "-c", tc.script)...)
			if r.code != 0 {
				t.Fatalf("exit code %d, want 0; stderr ends:\n%s", r.code, tail(r.stderr, 2000))
			}
			if r.stdout != tc.stdout {
				t.Errorf("stdout: %d bytes, want %d; first difference at byte %d", len(r.stdout), len(tc.stdout), firstDifference(r.stdout, tc.stdout))
			}
			if r.stderr != tc.stderr {
				t.Errorf("stderr: %d bytes, want %d; first difference at byte %d", len(r.stderr), len(tc.stderr), firstDifference(r.stderr, tc.stderr))
			}
		})
	}
}

// sibling-run's own line after a build's unterminated last line (a progress
// display, say) starts a line of its own instead of being glued to it.
func TestLogLineAfterAnOpenLineStartsItsOwn(t *testing.T) {
	r := siblingRun(t, t.TempDir(), nil, buildArgs("sh", "-c", "echo line; printf 'progress: 97%%' >&2")...)
	if r.code != 0 || r.stdout != "line\n" {
		t.Fatalf("exit code %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.HasSuffix(r.stderr, "\n") || !strings.Contains(r.stderr, "progress: 97%\n[sibling-run] INF build finished") {
		t.Errorf("the log line does not start its own line after the build's open one:\n%q", r.stderr)
	}
}

// A build killed by a signal exits 128+n, as in a shell, and only a kill by
// the kernel's OOM killer is reported as running out of memory.
func TestSignalKilledBuildGives128PlusN(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		signal string
		want   int
	}{
		{"HUP", 129}, {"INT", 130}, {"ABRT", 134}, {"KILL", 137}, {"USR1", 138}, {"SEGV", 139}, {"PIPE", 141}, {"TERM", 143},
	} {
		t.Run(tc.signal, func(t *testing.T) {
			r := siblingRun(t, dir, nil, buildArgs("sh", "-c", "echo before; kill -"+tc.signal+" $$; echo after")...)
			if r.code != tc.want {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tc.want, r.stderr)
			}
			if r.stdout != "before\n" {
				t.Errorf("stdout %q, want %q", r.stdout, "before\n")
			}
			if strings.Contains(r.stderr, "out of memory") {
				t.Errorf("a build killed by SIG%s is reported as out of memory:\n%s", tc.signal, r.stderr)
			}
		})
	}
}

// Exit codes across 0-255 pass through, from runs made eight at a time on one
// engine, each with its own output to tell them apart: no run gets another's
// bytes or code, none reaps another's sibling as an orphan (they share an
// owner host), and nothing is left. The codes are each bit on its own, every
// code that means something to a shell, to docker run or to sibling-run
// itself (124-130, 137, 143), and the top ones; all 256 would take minutes
// on two cores, since each is a container's whole life, and the code is an
// integer that nothing between the engine and exit() looks at.
func TestConcurrentRunsKeepToTheirOwnOutputAndExitCode(t *testing.T) {
	dir := t.TempDir()
	const parallel = 8
	codes := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for code := range codes {
				script := fmt.Sprintf(`seq 1 2000 | sed "s/^/run %d line /"; echo "run %d on stderr" >&2; exit %d`, code, code, code)
				cmd := siblingRunCommand(dir, nil, buildArgs("sh", "-c", script)...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				var wrong []string
				if cmd.ProcessState == nil {
					wrong = append(wrong, fmt.Sprintf("did not run: %v", err))
				} else if got := cmd.ProcessState.ExitCode(); got != code {
					wrong = append(wrong, fmt.Sprintf("exit code %d", got))
				}
				var want strings.Builder
				for i := 1; i <= 2000; i++ {
					fmt.Fprintf(&want, "run %d line %d\n", code, i)
				}
				if stdout.String() != want.String() {
					wrong = append(wrong, fmt.Sprintf("stdout of %d bytes, want %d, first difference at byte %d", stdout.Len(), want.Len(), firstDifference(stdout.String(), want.String())))
				}
				if got, want := buildStderr(stderr.String()), fmt.Sprintf("run %d on stderr\n", code); got != want {
					wrong = append(wrong, fmt.Sprintf("the build's stderr %q, want %q", got, want))
				}
				if len(wrong) > 0 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("run exiting %d: %s; stderr:\n%s", code, strings.Join(wrong, "; "), tail(stderr.String(), 1000)))
					mu.Unlock()
				}
			}
		}()
	}
	for _, code := range []int{0, 1, 2, 4, 8, 16, 32, 64, 128, 3, 42, 100, 124, 125, 126, 127, 129, 130, 137, 143, 200, 253, 254, 255} {
		codes <- code
	}
	close(codes)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if left := containersWith(t, testLabel); len(left) > 0 {
		t.Errorf("%d siblings left after the runs", len(left))
	}
}

// buildStderr is sibling-run's stderr without its own log lines, which come
// before the build starts and after it ends: what the build wrote.
func buildStderr(stderr string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(stderr, "\n") {
		if !strings.HasPrefix(line, "[sibling-run] ") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// firstDifference is the index of the first byte where a and b differ.
func firstDifference(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
