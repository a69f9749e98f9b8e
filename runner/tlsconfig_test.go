package runner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sibling-run/runner/testpki"
)

func TestReadEngineTLS(t *testing.T) {
	for _, tt := range []struct {
		name    string
		environ []string
		want    engineTLS
	}{
		{"nothing set", []string{"HOME=/home/ci"}, engineTLS{Dir: "/home/ci/.docker"}},
		{"verify", []string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=/certs"}, engineTLS{On: true, Verify: true, Dir: "/certs", DirVar: "DOCKER_CERT_PATH"}},
		{"verify set to 0 still verifies, as for the docker CLI", []string{"DOCKER_TLS_VERIFY=0", "HOME=/h"}, engineTLS{On: true, Verify: true, Dir: "/h/.docker"}},
		{"DOCKER_TLS: TLS without verification", []string{"DOCKER_TLS=1", "DOCKER_CONFIG=/cfg"}, engineTLS{On: true, Dir: "/cfg", DirVar: "DOCKER_CONFIG"}},
		{"a certificate path alone does not turn TLS on", []string{"DOCKER_CERT_PATH=/certs"}, engineTLS{Dir: "/certs", DirVar: "DOCKER_CERT_PATH"}},
		{"DOCKER_CERT_PATH before DOCKER_CONFIG", []string{"DOCKER_CONFIG=/cfg", "DOCKER_CERT_PATH=/certs", "DOCKER_TLS_VERIFY=yes"}, engineTLS{On: true, Verify: true, Dir: "/certs", DirVar: "DOCKER_CERT_PATH"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := readEngineTLS(tt.environ); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// certDir writes a CA and a client certificate of it into a new directory.
func certDir(t *testing.T, ca, client testpki.Pair) string {
	t.Helper()
	dir, err := testpki.WriteClientDir(filepath.Join(t.TempDir(), "certs"), ca, client)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestClientConfigChecksTheFiles(t *testing.T) {
	ca := testpki.NewCA("test CA")
	client := ca.Issue(testpki.Options{Name: "agent"})
	other := ca.Issue(testpki.Options{Name: "other"})
	now := time.Now()
	for _, tt := range []struct {
		name  string
		setup func(dir string) // changes a valid directory
		want  string           // "" for no error
	}{
		{"valid", func(string) {}, ""},
		{"no client certificate at all", func(dir string) { rm(t, dir, "cert.pem"); rm(t, dir, "key.pem") }, ""},
		{"no CA", func(dir string) { rm(t, dir, "ca.pem") }, "ca.pem (DOCKER_TLS_VERIFY is set, so the engine is checked against it): no such file"},
		{"CA not PEM", func(dir string) { write(t, dir, "ca.pem", "not a certificate\n") }, "ca.pem holds no PEM certificate"},
		{"CA unparsable", func(dir string) {
			write(t, dir, "ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
		}, "cannot be parsed"},
		{"key without certificate", func(dir string) { rm(t, dir, "cert.pem") }, "cannot read the client certificate " + "DIR/cert.pem: no such file"},
		{"certificate without key", func(dir string) { rm(t, dir, "key.pem") }, "cannot read the client key DIR/key.pem: no such file"},
		{"key not PEM", func(dir string) { write(t, dir, "key.pem", "secret\n") }, "DIR/key.pem is not a PEM private key"},
		{"key of another certificate", func(dir string) { write(t, dir, "key.pem", string(other.KeyPEM())) }, "DIR/key.pem does not belong to the certificate DIR/cert.pem"},
		{"encrypted key", func(dir string) {
			write(t, dir, "key.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
		}, "DIR/key.pem is encrypted"},
		{"expired", func(dir string) {
			old := ca.Issue(testpki.Options{Name: "agent", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
			write(t, dir, "cert.pem", string(old.CertPEM()))
			write(t, dir, "key.pem", string(old.KeyPEM()))
		}, "DIR/cert.pem expired on"},
		{"not yet valid", func(dir string) {
			early := ca.Issue(testpki.Options{Name: "agent", NotBefore: now.Add(24 * time.Hour)})
			write(t, dir, "cert.pem", string(early.CertPEM()))
			write(t, dir, "key.pem", string(early.KeyPEM()))
		}, "DIR/cert.pem is not valid before"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := certDir(t, ca, client)
			tt.setup(dir)
			s := engineTLS{On: true, Verify: true, Dir: dir, DirVar: "DOCKER_CERT_PATH"}
			_, err := s.clientConfig("tcp://127.0.0.1:2376", now)
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Fatalf("got %v, want one containing %q", err, want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Fatalf("more than one line: %q", err)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		if os.Getuid() == 0 {
			// root reads any file: take the read away from a directory
			// entry instead, which root cannot read through either.
			dir := certDir(t, ca, client)
			rm(t, dir, "ca.pem")
			if err := os.Mkdir(filepath.Join(dir, "ca.pem"), 0o700); err != nil {
				t.Fatal(err)
			}
			_, err := engineTLS{On: true, Verify: true, Dir: dir}.clientConfig("tcp://127.0.0.1:2376", now)
			if err == nil || !strings.Contains(err.Error(), dir+"/ca.pem") || !strings.Contains(err.Error(), "is a directory") {
				t.Fatalf("got %v, want the file and its cause", err)
			}
			return
		}
		dir := certDir(t, ca, client)
		if err := os.Chmod(filepath.Join(dir, "key.pem"), 0); err != nil {
			t.Fatal(err)
		}
		_, err := engineTLS{On: true, Verify: true, Dir: dir}.clientConfig("tcp://127.0.0.1:2376", now)
		if err == nil || !strings.Contains(err.Error(), "key.pem: permission denied") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("without verification no CA is needed", func(t *testing.T) {
		dir := certDir(t, ca, client)
		rm(t, dir, "ca.pem")
		cfg, err := engineTLS{On: true, Dir: dir}.clientConfig("tcp://builder:2376", now)
		if err != nil || !cfg.InsecureSkipVerify || len(cfg.Certificates) != 1 || cfg.ServerName != "builder" {
			t.Fatalf("got %+v, %v", cfg, err)
		}
	})
}

func rm(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsEngine serves /_ping over TLS with cert, asking for a client
// certificate of clientCA (none: not asking), and returns its tcp:// host.
func tlsEngine(t *testing.T, server testpki.Pair, clientCA *testpki.Pair) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(pingHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{server.Cert.Raw}, PrivateKey: server.Key}}}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.Cert)
		srv.TLS.ClientCAs, srv.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the test
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return "tcp://" + srv.Listener.Addr().String()
}

func pingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Api-Version", "1.41")
			fmt.Fprint(w, "OK")
			return
		}
		http.NotFound(w, r)
	})
}

// TestConnectOverTLS connects as the docker CLI would, with the variables
// set, to a TLS server that checks client certificates, and checks that
// each handshake failure is one line naming the file and the cause.
func TestConnectOverTLS(t *testing.T) {
	ca := testpki.NewCA("engine CA")
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	server := ca.Issue(testpki.Options{Name: "engine", Server: true, IPs: loopback, DNSNames: []string{"localhost"}})
	client := ca.Issue(testpki.Options{Name: "agent"})
	stranger := testpki.NewCA("another CA")

	engine := tlsEngine(t, server, &ca)
	misnamed := tlsEngine(t, ca.Issue(testpki.Options{Name: "builder", Server: true, DNSNames: []string{"builder.example"}}), &ca)
	plain := httptest.NewServer(pingHandler())
	t.Cleanup(plain.Close)
	plainHost := "tcp://" + plain.Listener.Addr().String()

	good := certDir(t, ca, client)
	wrongCA := certDir(t, stranger, client)
	strangerClient := certDir(t, ca, stranger.Issue(testpki.Options{Name: "agent"}))
	noClientCert := certDir(t, ca, client)
	rm(t, noClientCert, "cert.pem")
	rm(t, noClientCert, "key.pem")

	for _, tt := range []struct {
		name string
		host string
		env  map[string]string
		want string // "" for a connection
	}{
		{"verified", engine, map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": good}, ""},
		{"TLS without verification", misnamed, map[string]string{"DOCKER_TLS": "1", "DOCKER_CERT_PATH": good}, ""},
		{"engine signed by another CA", engine, map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": wrongCA}, `signed by "CN=engine CA", not by the CA in ` + wrongCA + "/ca.pem"},
		{"name mismatch", misnamed, map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": good}, `the engine's certificate is for builder.example, not for "127.0.0.1"`},
		{"client certificate of another CA", engine, map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": strangerClient}, "asks for a client certificate issued by its CA, and " + strangerClient + "/cert.pem is not"},
		{"no client certificate", engine, map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": noClientCert}, "asks for a client certificate"},
		{"plain client, TLS engine", engine, map[string]string{"DOCKER_CERT_PATH": good}, "speaks TLS, and sibling-run connected without it; set DOCKER_TLS_VERIFY=1"},
		{"TLS client, plain engine", plainHost, map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": good}, "answers without TLS"},
		{"TLS variables ignored for a unix socket", engineOnSocket(t, pingHandler().ServeHTTP), map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/nonexistent"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{"DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CERT_PATH", "DOCKER_CONFIG"} {
				t.Setenv(name, tt.env[name])
			}
			api, err := Connect(context.Background(), tt.host)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want a connection", err)
				}
				api.Close()
				return
			}
			if err == nil {
				api.Close()
				t.Fatalf("connected, want %q", tt.want)
			}
			if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %q (exit %d), want one line containing %q, exit 125", err, exitCodeOf(err), tt.want)
			}
		})
	}
}

func TestTLSFilesInWorkdir(t *testing.T) {
	workdir := t.TempDir()
	for _, tt := range []struct {
		name    string
		environ []string
		host    string
		refused bool
	}{
		{"certificates inside", []string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + workdir + "/.docker"}, "tcp://builder:2376", true},
		{"the working directory itself", []string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + workdir}, "tcp://builder:2376", true},
		{"home is the working directory", []string{"DOCKER_TLS=1", "HOME=" + workdir}, "tcp://builder:2376", true},
		{"outside", []string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + workdir + "-certs"}, "tcp://builder:2376", false},
		{"no TLS", []string{"DOCKER_CERT_PATH=" + workdir}, "tcp://builder:2376", false},
		{"a unix socket", []string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + workdir}, "unix:///var/run/docker.sock", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tlsFilesInWorkdir(tt.environ, tt.host, workdir)
			if (err != nil) != tt.refused {
				t.Fatalf("got %v, refused should be %v", err, tt.refused)
			}
		})
	}
}
