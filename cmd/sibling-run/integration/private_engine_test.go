package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"
)

// privateEngine is a second dockerd of the test's own, which a test may kill
// without disturbing the main engine: its own socket, data root, exec root
// and managed containerd, all under one temporary directory, and a network
// namespace of its own, with no bridge, iptables rules or forwarding
// settings. The namespace matters: a dockerd without a bridge deletes any
// docker0 it finds, and in the host's namespace that is the main engine's.
// Its builds must run with --network none.
type privateEngine struct {
	t    *testing.T
	dir  string
	host string // unix://<dir>/docker.sock
	api  *client.Client
	log  string // dockerd's output, kept across restarts

	setup  privateEngineSetup
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has ended
}

// privateEngineSetup is what a test adds to a private engine.
type privateEngineSetup struct {
	// args returns more dockerd flags; it may write their files into dir,
	// the engine's directory.
	args func(dir string) []string
	// hide is a directory the engine must not see: dockerd runs in a mount
	// namespace of its own, with an empty tmpfs over hide, and with its
	// loopback interface up, so that it may listen on 127.0.0.1.
	hide string
}

// startPrivateEngine starts a private engine and removes every trace of it
// when the test ends, however the test ends.
func startPrivateEngine(t *testing.T) *privateEngine {
	t.Helper()
	return startPrivateEngineWith(t, privateEngineSetup{})
}

// startPrivateEngineWith starts a private engine with setup, as
// startPrivateEngine does.
func startPrivateEngineWith(t *testing.T, setup privateEngineSetup) *privateEngine {
	t.Helper()
	// Not t.TempDir: the engine leaves mounts under it that must go first,
	// and the unix socket paths under it must stay short.
	dir, err := os.MkdirTemp("", "sr-private-engine-")
	if err != nil {
		t.Fatal(err)
	}
	e := &privateEngine{t: t, dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock"), log: filepath.Join(dir, "dockerd.log"), setup: setup}
	// Checked after the engine is gone (cleanups run last first): it must
	// not have added or removed any of the host's interfaces, docker0 above all.
	hostLinks := hostInterfaces(t)
	t.Cleanup(func() {
		if after := hostInterfaces(t); after != hostLinks {
			t.Errorf("the private engine changed the host's network interfaces: before %s, after %s", hostLinks, after)
		}
	})
	t.Cleanup(e.remove)
	// An empty configuration, so that the main engine's daemon.json (its
	// data root, its storage driver) does not apply.
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.api, err = client.NewClientWithOpts(client.WithHost(e.host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	return e
}

// start starts dockerd on the engine's directories, a second time after a
// kill too, and returns once it answers.
func (e *privateEngine) start() {
	e.t.Helper()
	logFile, err := os.OpenFile(e.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logFile.Close()
	args := []string{"/usr/sbin/dockerd",
		"--config-file", filepath.Join(e.dir, "daemon.json"),
		"--host", e.host,
		"--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(e.dir, "docker.pid"),
		"--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--storage-driver", "vfs", // the only driver sure to work on any data root
	}
	if e.setup.args != nil {
		args = append(args, e.setup.args(e.dir)...)
	}
	cloneflags := uintptr(syscall.CLONE_NEWNET)
	if e.setup.hide != "" {
		// The shell execs dockerd, which keeps its pid, process group and
		// parent-death signal. Private first, so that neither the tmpfs nor
		// dockerd's own mounts reach the host's namespace.
		cloneflags |= syscall.CLONE_NEWNS
		args = append([]string{"/bin/sh", "-c", `mount --make-rprivate / && mount -t tmpfs -o size=1m,mode=0755 sibling-run-hidden "$0" && /bin/busybox ip link set lo up && exec "$@"`, e.setup.hide}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a Ctrl-C of the test reaches it only through
	// the cleanup; and it dies with the test process if that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Cloneflags: cloneflags}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting a private dockerd: %v", err)
	}
	e.cmd, e.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(e.exited)

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := e.api.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-e.exited:
			e.t.Fatalf("the private dockerd ended while starting: %s\n%s", cmd.ProcessState, e.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the private dockerd did not answer within 30s: %v\n%s", err, e.logTail())
		}
	}
}

// running tells whether the dockerd that start started has not ended.
func (e *privateEngine) running() bool {
	if e.cmd == nil {
		return false
	}
	select {
	case <-e.exited:
		return false
	default:
		return true
	}
}

// kill kills dockerd with SIGKILL, as a crash or an OOM kill would, and
// returns once it has ended.
func (e *privateEngine) kill() {
	e.t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		e.t.Fatalf("killing the private dockerd: %v", err)
	}
	<-e.exited
	// Its containerd ends with it, but not at the same instant; a dockerd
	// started while it is still there would take it for a live one, wait for
	// its socket and give up after 15 seconds.
	pidFile := filepath.Join(e.dir, "exec", "containerd", "containerd.pid")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return // it had not started: nothing to wait for
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		e.t.Fatalf("%s holds %q, not a pid", pidFile, data)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			return
		}
	}
	e.t.Logf("the private engine's containerd (pid %d) outlived dockerd by 10s; the next dockerd uses it", pid)
}

// stop stops dockerd as its service manager would: SIGTERM, then SIGKILL if
// it has not ended within 20 seconds.
func (e *privateEngine) stop() {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(20 * time.Second):
		e.t.Errorf("the private dockerd did not stop within 20s of SIGTERM; killing it")
		_ = e.cmd.Process.Signal(syscall.SIGKILL)
		<-e.exited
	}
}

// loadImage copies ref from the main engine into the private one.
func (e *privateEngine) loadImage(ref string) {
	e.t.Helper()
	ctx := context.Background()
	saved, err := api.ImageSave(ctx, []string{ref})
	if err != nil {
		e.t.Fatalf("saving %s: %v", ref, err)
	}
	defer saved.Close()
	loaded, err := e.api.ImageLoad(ctx, saved, client.ImageLoadWithQuiet(true))
	if err != nil {
		e.t.Fatalf("loading %s into the private engine: %v", ref, err)
	}
	defer loaded.Body.Close()
	dec := json.NewDecoder(loaded.Body)
	for {
		var msg struct{ Error string }
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			e.t.Fatalf("loading %s into the private engine: %v", ref, err)
		}
		if msg.Error != "" {
			e.t.Fatalf("loading %s into the private engine: %s", ref, msg.Error)
		}
	}
	if _, err := e.api.ImageInspect(ctx, ref); err != nil {
		e.t.Fatalf("%s is not on the private engine after loading it: %v", ref, err)
	}
}

// remove stops the engine, ends whatever of it is left (a containerd, a
// shim, a build), unmounts what it mounted and removes its directory.
func (e *privateEngine) remove() {
	if e.t.Failed() {
		e.t.Logf("the private dockerd's log:\n%s", e.logTail())
	}
	if e.api != nil {
		e.api.Close()
	}
	if e.running() {
		e.stop()
	}
	if left := e.killLeftovers(); len(left) > 0 && !e.t.Failed() {
		e.t.Errorf("processes of the private engine outlived it (now killed): %s", strings.Join(left, "; "))
	}
	if err := e.unmountAll(); err != nil {
		e.t.Errorf("unmounting the private engine's mounts: %v", err)
	}
	if err := os.RemoveAll(e.dir); err != nil {
		e.t.Errorf("removing the private engine's directory: %v", err)
	}
}

// killLeftovers kills with SIGKILL every process whose command line names
// the engine's directory (a dockerd, its containerd, a containerd shim) and
// everything below them (a build still running in a shim), waits for them to
// end and returns their command lines.
func (e *privateEngine) killLeftovers() []string {
	procs := processTable()
	var roots []int
	for pid, p := range procs {
		if pid != os.Getpid() && strings.Contains(p.cmdline, e.dir+"/") {
			roots = append(roots, pid)
		}
	}
	var left []string
	pids := descendants(procs, roots)
	for _, pid := range pids {
		left = append(left, fmt.Sprintf("%d %s", pid, procs[pid].cmdline))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		alive := false
		for _, pid := range pids {
			// A killed process reparented to init is reaped at once; one
			// that is still our child is a zombie until its Wait.
			if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !bytes.Contains(stat, []byte(") Z ")) {
				alive = true
			}
		}
		if !alive {
			break
		}
	}
	return left
}

// unmountAll unmounts everything mounted at or under the engine's
// directory (dockerd bind-mounts its data root onto itself, and a build's
// network namespace and /dev/shm are mounts), deepest first, until nothing
// is left: mounts can be stacked.
func (e *privateEngine) unmountAll() error {
	for range 10 {
		mounts, err := mountPointsUnder(e.dir)
		if err != nil || len(mounts) == 0 {
			return err
		}
		sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
		for _, m := range mounts {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
				return fmt.Errorf("unmounting %s: %w", m, err)
			}
		}
	}
	return fmt.Errorf("mounts under %s remain after 10 rounds of unmounting", e.dir)
}

func mountPointsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var under []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := fields[4]
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			under = append(under, mp)
		}
	}
	return under, nil
}

func (e *privateEngine) logTail() string {
	data, _ := os.ReadFile(e.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

type process struct {
	ppid    int
	cmdline string
}

// processTable reads every process's parent and command line from /proc.
func processTable() map[int]process {
	procs := map[int]process{}
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command's name in parentheses may hold spaces; the fields
		// after its closing parenthesis are state, then the parent's pid.
		after := stat[bytes.LastIndexByte(stat, ')')+1:]
		fields := strings.Fields(string(after))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		procs[pid] = process{ppid: ppid, cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))}
	}
	return procs
}

// descendants returns roots and every process below them.
func descendants(procs map[int]process, roots []int) []int {
	seen := map[int]bool{}
	var all []int
	for len(roots) > 0 {
		pid := roots[0]
		roots = roots[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		all = append(all, pid)
		for child, p := range procs {
			if p.ppid == pid {
				roots = append(roots, child)
			}
		}
	}
	return all
}

// hostInterfaces names the host's network interfaces, but for those that the
// main engine's containers and networks come and go with.
func hostInterfaces(t *testing.T) string {
	t.Helper()
	links, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		// Other runs on the main engine make and remove these at any time.
		if !strings.HasPrefix(l.Name, "veth") && !strings.HasPrefix(l.Name, "br-") {
			names = append(names, l.Name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}
