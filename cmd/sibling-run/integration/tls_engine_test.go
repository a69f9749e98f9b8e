package integration

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sibling-run/runner/testpki"
)

// tlsEnginePort is where the TLS engine listens, in its own network
// namespace; the tests reach it through a free loopback port of theirs.
const tlsEnginePort = "127.0.0.1:2376"

// tlsEngine is a private engine (see privateEngine) that the tests reach as
// a remote engine: over TCP with TLS, its client certificates checked
// (--tlsverify), from a loopback port of the tests' network namespace
// forwarded into its own. It cannot see the test's temporary directories,
// where the working directories and the client's certificates are, so a
// bind of a working directory finds nothing there.
type tlsEngine struct {
	*privateEngine
	host   string       // tcp://127.0.0.1:PORT, the forwarded port
	ca     testpki.Pair // the CA of the engine's and the client's certificates
	certs  string       // a DOCKER_CERT_PATH with a valid client certificate
	hidden string       // what the engine cannot see: the test's temporary tree
}

// startTLSEngine starts a TLS engine with the busybox image loaded, and
// removes every trace of it when t ends.
func startTLSEngine(t *testing.T) *tlsEngine {
	t.Helper()
	e := &tlsEngine{ca: testpki.NewCA("sibling-run test engine CA")}
	e.hidden = filepath.Dir(t.TempDir())
	server := e.ca.Issue(testpki.Options{Name: "engine", Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	e.certs = e.clientCerts(t, e.ca.Issue(testpki.Options{Name: "agent"}))
	e.privateEngine = startPrivateEngineWith(t, privateEngineSetup{
		hide: e.hidden,
		args: func(dir string) []string {
			files := map[string][]byte{"ca.pem": e.ca.CertPEM(), "server-cert.pem": server.CertPEM(), "server-key.pem": server.KeyPEM()}
			for name, data := range files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return []string{"--host", "tcp://" + tlsEnginePort, "--tlsverify",
				"--tlscacert", filepath.Join(dir, "ca.pem"), "--tlscert", filepath.Join(dir, "server-cert.pem"), "--tlskey", filepath.Join(dir, "server-key.pem")}
		},
	})
	e.host = e.forwardPort(t)
	e.loadImage(busyboxImage)
	return e
}

// clientCerts writes the CA and client's certificate and key into a new
// directory, outside every working directory, and returns it.
func (e *tlsEngine) clientCerts(t *testing.T, client testpki.Pair) string {
	t.Helper()
	dir, err := testpki.WriteClientDir(filepath.Join(t.TempDir(), "certs"), e.ca, client)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// env is what sibling-run needs to reach the engine with the client
// certificates in certs, as the docker CLI would.
func (e *tlsEngine) env(certs string) []string {
	return []string{"DOCKER_HOST=" + e.host, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + certs}
}

// forwardPort listens on a free loopback port here and joins each
// connection to the engine's TCP port in its network namespace, until t
// ends; it returns the port as a DOCKER_HOST.
func (e *tlsEngine) forwardPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The pid of the dockerd running now: a test may restart it. Cleanups
	// run last first, so the connections end before the engine does.
	serveForwarding(t, l, func() (net.Conn, error) {
		return dialInNetns("/proc/"+strconv.Itoa(e.cmd.Process.Pid)+"/ns/net", tlsEnginePort)
	})
	return "tcp://" + l.Addr().String()
}

// TestTLSEngineCannotSeeTheWorkdir is the control of the TLS engine tests:
// a working directory that the engine is asked to bind (--remote=false) is
// not there, so what works on it in the copy mode (auto, for a tcp://
// engine) works without a bind.
func TestTLSEngineCannotSeeTheWorkdir(t *testing.T) {
	firstPassOnly(t, "it starts an engine of its own")
	e := startTLSEngine(t)
	dir := filepath.Join(e.hidden, "work")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("seen by the build\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := siblingRun(t, dir, e.env(e.certs), buildArgs("--network", "none", "--remote=false", "cat", "marker")...)
	if r.code == 0 || strings.Contains(r.stdout, "seen by the build") {
		t.Fatalf("a bind of the working directory reached it on the TLS engine (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = siblingRun(t, dir, e.env(e.certs), buildArgs("--network", "none", "cat", "marker")...)
	if r.code != 0 || r.stdout != "seen by the build\n" {
		t.Fatalf("the copy mode (auto) on the TLS engine: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	e.assertNothingLeft(t)
}
