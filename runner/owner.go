package runner

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// Labels that sibling-run puts on every container it creates. Reaping finds
// siblings by them, so no other state is needed to clean up after a crash.
const (
	labelPrefix     = "sibling-run."
	LabelManaged    = labelPrefix + "managed"     // "true" on everything sibling-run creates
	LabelOwner      = labelPrefix + "owner"       // "container:<id>" or "host:<hostname>"
	LabelOwnerPID   = labelPrefix + "owner.pid"   // pid of the sibling-run process, in its namespace
	LabelOwnerStart = labelPrefix + "owner.start" // that process's start time, in clock ticks since boot
	LabelOwnerBoot  = labelPrefix + "owner.boot"  // the kernel's boot id, so a reboot orphans everything
	LabelBuildKey   = labelPrefix + "build-key"   // bamboo_buildResultKey, when set
	LabelKeep       = labelPrefix + "keep"        // "true" for --keep: reap leaves it alone
)

// owner identifies one sibling-run process: where it runs and which process it
// is. PID and start time together survive pid reuse.
type owner struct {
	ID    string // "container:<id>" or "host:<hostname>"
	PID   int
	Start string
	Boot  string
}

// currentOwner describes this process. selfID is the container it runs in, or "".
func currentOwner(selfID string) owner {
	o := owner{PID: os.Getpid(), Start: processStartTime(os.Getpid()), Boot: bootID()}
	if selfID != "" {
		o.ID = "container:" + selfID
	} else {
		host, _ := os.Hostname()
		o.ID = "host:" + host
	}
	return o
}

func (o owner) labels() map[string]string {
	return map[string]string{
		LabelManaged:    "true",
		LabelOwner:      o.ID,
		LabelOwnerPID:   strconv.Itoa(o.PID),
		LabelOwnerStart: o.Start,
		LabelOwnerBoot:  o.Boot,
	}
}

func ownerFromLabels(labels map[string]string) owner {
	pid, _ := strconv.Atoi(labels[LabelOwnerPID])
	return owner{
		ID:    labels[LabelOwner],
		PID:   pid,
		Start: labels[LabelOwnerStart],
		Boot:  labels[LabelOwnerBoot],
	}
}

func (o owner) String() string {
	return fmt.Sprintf("%s pid %d", o.ID, o.PID)
}

// stillRuns reports whether the process o names is still running. It must only
// be asked of owners that share this process's pid namespace (same owner ID).
// When in doubt, it says yes: reaping a live build is worse than keeping an orphan.
func (o owner) stillRuns() bool {
	if o.Boot != "" && o.Boot != bootID() {
		return false
	}
	if o.PID <= 0 {
		return true
	}
	start := processStartTime(o.PID)
	if start == "" {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", o.PID))
		return !os.IsNotExist(err)
	}
	return o.Start == "" || start == o.Start
}

// processStartTime returns field 22 of /proc/<pid>/stat: when the process
// started, in clock ticks after boot. "" if the process is gone.
func processStartTime(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	return startTimeFromStat(string(data))
}

// startTimeFromStat parses a /proc/<pid>/stat line. The command name (field 2)
// may contain spaces and parentheses, so fields are counted after its last ')'.
func startTimeFromStat(stat string) string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(stat[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

func bootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// ownerGone decides whether the sibling-run process o, which made a sibling
// or network at created (Unix seconds), is gone for good. It is the one rule
// every reaper follows: reap, the orphan clearing of each run, and reap
// --watch. When in doubt it says no: removing a live build is worse than
// keeping an orphan for a while.
func ownerGone(ctx context.Context, api Engine, me, o owner, created int64) bool {
	containerID, inContainer := strings.CutPrefix(o.ID, "container:")
	switch {
	case o.ID == "":
		// No owner label: not made by a sibling-run that reaping understands.
		return false
	case o.ID == me.ID:
		// Our own pid namespace (this host, or this container): the process
		// itself tells, by its pid and start time.
		return !o.stillRuns()
	case inContainer:
		// Another container on this engine: the process died with it when
		// it is gone, stopped, or restarted since the object was made.
		return containerGone(ctx, api, containerID, created)
	default:
		// A process on another host: nothing here can tell.
		return false
	}
}

// containerGone reports whether container id is removed, stopped, or was
// started again later than the second created (a restart policy, or docker
// restart): every process that ran in it before is gone. An engine error
// counts as not gone.
func containerGone(ctx context.Context, api Engine, id string, created int64) bool {
	info, err := api.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return true
	}
	if err != nil || info.State == nil {
		return false
	}
	if !info.State.Running {
		return true
	}
	started, err := time.Parse(time.RFC3339Nano, info.State.StartedAt)
	return err == nil && started.Unix() > created
}

// processKey identifies the process within its namespace, pid reuse included.
func (o owner) processKey() string { return strconv.Itoa(o.PID) + "/" + o.Start }

// checkLabels refuses the user's labels that could pass for sibling-run's
// own: reaping trusts those.
func checkLabels(labels map[string]string) error {
	for key := range labels {
		if strings.HasPrefix(key, labelPrefix) {
			return fmt.Errorf("--label %s uses the prefix %q, which sibling-run reserves for its own labels; choose another key", key, labelPrefix)
		}
	}
	return nil
}
