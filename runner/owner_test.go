package runner

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestStartTimeFromStat(t *testing.T) {
	// After the command name: state, then fields 4 to 21, then the start time.
	const rest = " S 1 4242 4242 0 -1 4194560 1234 0 0 0 10 5 0 0 20 0 1 0 987654 12345678 1234 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n"
	tests := []struct {
		name string
		stat string
		want string
	}{
		{"plain", "4242 (sibling-run)" + rest, "987654"},
		{"spaces in the name", "4242 (my build tool)" + rest, "987654"},
		{"parentheses in the name", "4242 (a (b) c)" + rest, "987654"},
		// A name can imitate the fields that follow it; only the last ')' counts.
		{"name imitating fields", "4242 (x) R 9 9 9 9)" + rest, "987654"},
		{"only ')'", "4242 ())))" + rest, "987654"},
		{"no trailing newline", "4242 (sh) S 1 4242 4242 0 -1 4194560 1234 0 0 0 10 5 0 0 20 0 1 0 55", "55"},
		{"no command name", "4242 sh S 1 2 3", ""},
		{"too few fields", "4242 (sh) S 1 4242 4242 0 -1 4194560 1234 0 0 0 10 5 0 0 20 0 1 0", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := startTimeFromStat(tt.stat); got != tt.want {
				t.Errorf("startTimeFromStat(%q) = %q, want %q", tt.stat, got, tt.want)
			}
		})
	}
}

func TestOwnerLabelsRoundTrip(t *testing.T) {
	tests := []owner{
		{ID: "host:agent-7", PID: 4242, Start: "987654", Boot: "158e329c-af27-483d-bf5c-32e19fd3102b"},
		{ID: "container:2015d3f66eb3f105f86da314e4e3d89b193de21cba314ce3d68b2fedc018f3b0", PID: 1, Start: "12", Boot: "b"},
		{ID: "host:", PID: 0, Start: "", Boot: ""},
	}
	for _, o := range tests {
		if got := ownerFromLabels(o.labels()); got != o {
			t.Errorf("ownerFromLabels(%+v.labels()) = %+v, want %+v", o, got, o)
		}
		if got := o.labels()[LabelManaged]; got != "true" {
			t.Errorf("%+v.labels()[%s] = %q, want \"true\"", o, LabelManaged, got)
		}
	}
}

func TestOwnerFromLabelsForeign(t *testing.T) {
	// A container someone labelled by hand yields a zero pid, never a panic.
	tests := []struct {
		name   string
		labels map[string]string
		want   owner
	}{
		{"nil", nil, owner{}},
		{"bad pid", map[string]string{LabelOwner: "host:x", LabelOwnerPID: "abc"}, owner{ID: "host:x"}},
	}
	for _, tt := range tests {
		if got := ownerFromLabels(tt.labels); got != tt.want {
			t.Errorf("%s: ownerFromLabels(%v) = %+v, want %+v", tt.name, tt.labels, got, tt.want)
		}
	}
}

func TestCurrentOwner(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	const id = "2015d3f66eb3f105f86da314e4e3d89b193de21cba314ce3d68b2fedc018f3b0"
	tests := []struct {
		selfID string
		wantID string
	}{
		{"", "host:" + host},
		{id, "container:" + id},
	}
	for _, tt := range tests {
		got := currentOwner(tt.selfID)
		if got.ID != tt.wantID {
			t.Errorf("currentOwner(%q).ID = %q, want %q", tt.selfID, got.ID, tt.wantID)
		}
		if got.PID != os.Getpid() {
			t.Errorf("currentOwner(%q).PID = %d, want %d", tt.selfID, got.PID, os.Getpid())
		}
		if want := processStartTime(os.Getpid()); got.Start != want || got.Start == "" {
			t.Errorf("currentOwner(%q).Start = %q, want %q (not empty)", tt.selfID, got.Start, want)
		}
		if got.Boot != bootID() {
			t.Errorf("currentOwner(%q).Boot = %q, want %q", tt.selfID, got.Boot, bootID())
		}
	}
}

func TestStillRuns(t *testing.T) {
	me := currentOwner("")
	gone := exitedPID(t)
	tests := []struct {
		name string
		o    owner
		want bool
	}{
		{"this process", me, true},
		{"this process without start time", owner{ID: me.ID, PID: me.PID, Boot: me.Boot}, true},
		{"this process without boot id", owner{ID: me.ID, PID: me.PID, Start: me.Start}, true},
		// Same pid, other start time: the pid was reused by another process.
		{"pid reused", owner{ID: me.ID, PID: me.PID, Start: me.Start + "0", Boot: me.Boot}, false},
		{"exited process", owner{ID: me.ID, PID: gone, Start: "1", Boot: me.Boot}, false},
		{"exited process without start time", owner{ID: me.ID, PID: gone, Boot: me.Boot}, false},
		{"other boot", owner{ID: me.ID, PID: me.PID, Start: me.Start, Boot: "00000000-0000-0000-0000-000000000000"}, false},
		// No pid to check: keep the sibling rather than reap a live build.
		{"no pid", owner{ID: me.ID, Boot: me.Boot}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.stillRuns(); got != tt.want {
				t.Errorf("%+v.stillRuns() = %v, want %v", tt.o, got, tt.want)
			}
		})
	}
}

// exitedPID returns the pid of a process that has run and been waited for.
func exitedPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatalf("running a child to get a dead pid: %v", err)
	}
	pid := cmd.Process.Pid
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !os.IsNotExist(err) {
		t.Skipf("pid %d was reused at once; cannot test a dead pid", pid)
	}
	return pid
}

func TestOwnerString(t *testing.T) {
	o := owner{ID: "host:agent-7", PID: 4242}
	if got, want := o.String(), "host:agent-7 pid 4242"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestCheckLabelsRefusesTheReservedPrefix(t *testing.T) {
	for _, tt := range []struct {
		labels map[string]string
		says   string // "" for no error
	}{
		{nil, ""},
		{map[string]string{"team": "x", "flaky": ""}, ""},
		// Only the exact reserved prefix is refused.
		{map[string]string{"sibling-run-extra": "x"}, ""},
		{map[string]string{"sibling-run.owner": "me"}, "--label sibling-run.owner uses the prefix"},
		{map[string]string{"team": "x", "sibling-run.mine": ""}, "reserves"},
	} {
		err := checkLabels(tt.labels)
		if tt.says == "" && err != nil || tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)) {
			t.Errorf("checkLabels(%v) = %v, want %q", tt.labels, err, tt.says)
		}
	}
}
