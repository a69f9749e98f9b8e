package integration

// The private engines of scripts/test.sh (Docker 29, Podman) live in network
// namespaces of their own, so a server the tests start on this machine's
// loopback (a registry, a registry that fails, one that never answers) is
// out of their reach. reachableFromEngine carries such a server's port into
// the engine's namespace: a listener there, on the same address, whose
// connections are forwarded to the server here. Image references then name
// the same address for the tests and for the engine.

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// engineNetnsEnv names the engine's network namespace (a path such as
// /proc/PID/ns/net) when it is not the tests' own; scripts/test.sh sets it
// for the private engines. Unset, the engine shares this machine's network,
// as the machine's own engine does.
const engineNetnsEnv = "SIBLING_RUN_TEST_ENGINE_NETNS"

// reachableFromEngine makes addr, a loopback address served here, reachable
// at the same address from the engine under test, until t ends.
func reachableFromEngine(t *testing.T, addr string) {
	t.Helper()
	netns := os.Getenv(engineNetnsEnv)
	if netns == "" {
		return
	}
	l, err := listenInNetns(netns, addr)
	if err != nil {
		t.Fatalf("listening on %s in the engine's network namespace %s (%s): %v", addr, netns, engineNetnsEnv, err)
	}
	serveForwarding(t, l, func() (net.Conn, error) { return net.Dial("tcp", addr) })
}

// serveForwarding joins each connection that l accepts to one that dial
// makes, until t ends.
func serveForwarding(t *testing.T, l net.Listener, dial func() (net.Conn, error)) {
	var conns sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				forward(in, dial)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		conns.Wait()
	})
}

// forward joins in to a new connection that dial makes until either side
// ends.
func forward(in net.Conn, dial func() (net.Conn, error)) {
	defer in.Close()
	out, err := dial()
	if err != nil {
		return
	}
	defer out.Close()
	ended := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); ended <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); ended <- struct{}{} }()
	<-ended // one side is done: end both, so the other copy returns too
}

// listenInNetns opens a TCP listener on addr inside the network namespace at
// path.
func listenInNetns(path, addr string) (net.Listener, error) {
	return openInNetns(path, func() (net.Listener, error) { return net.Listen("tcp", addr) })
}

// dialInNetns connects to addr inside the network namespace at path.
func dialInNetns(path, addr string) (net.Conn, error) {
	return openInNetns(path, func() (net.Conn, error) { return net.Dial("tcp", addr) })
}

// openInNetns opens a socket with open inside the network namespace at path,
// where it stays; it is closed again when entering or leaving failed.
func openInNetns[T io.Closer](path string, open func() (T, error)) (sock T, err error) {
	opened := false
	err = inNetns(path, func() (err error) {
		sock, err = open()
		opened = err == nil
		return err
	})
	if err != nil && opened {
		sock.Close()
	}
	return sock, err
}

// inNetns runs f in the network namespace at path. A socket stays in the
// namespace it was made in, so only the thread that makes it enters the
// namespace, and returns to its own before the Go scheduler may use it
// again.
func inNetns(path string, f func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer own.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	fErr := f()
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, and so ends with this goroutine rather
		// than serve others in the wrong namespace; what f made is of no use.
		return errors.Join(fErr, err, errors.New("could not return to this thread's network namespace"))
	}
	runtime.UnlockOSThread()
	return fErr
}
