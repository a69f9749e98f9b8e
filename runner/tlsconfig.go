package runner

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// engineTLS is how a TCP engine is reached, read from the environment as the
// docker CLI reads it: TLS is on when DOCKER_TLS_VERIFY or DOCKER_TLS is set
// to anything but "" (even "0"); the engine's certificate is verified only
// with DOCKER_TLS_VERIFY; the files are in DOCKER_CERT_PATH, else in
// DOCKER_CONFIG, else in ~/.docker. cert.pem and key.pem are sent when they
// exist. Unlike the docker CLI, only ca.pem is trusted, not the system's CAs.
type engineTLS struct {
	On     bool
	Verify bool
	Dir    string // where ca.pem, cert.pem and key.pem are
	DirVar string // the variable that named Dir, or "" for ~/.docker
}

// readEngineTLS reads the TLS settings from environ (NAME=VALUE entries).
func readEngineTLS(environ []string) engineTLS {
	s := engineTLS{
		Verify: lookupEnv(environ, "DOCKER_TLS_VERIFY") != "",
		On:     lookupEnv(environ, "DOCKER_TLS") != "",
	}
	s.On = s.On || s.Verify
	for _, name := range []string{"DOCKER_CERT_PATH", "DOCKER_CONFIG"} {
		if dir := lookupEnv(environ, name); dir != "" {
			s.Dir, s.DirVar = dir, name
			return s
		}
	}
	home := lookupEnv(environ, "HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	s.Dir = filepath.Join(home, ".docker")
	return s
}

func (s engineTLS) file(name string) string { return filepath.Join(s.Dir, name) }

// where names the certificate directory and why it is that one, for errors.
func (s engineTLS) where() string {
	if s.DirVar == "" {
		return "the docker CLI's default directory (DOCKER_CERT_PATH is not set)"
	}
	return "the directory that " + s.DirVar + " names"
}

// clientConfig checks the files before anything is sent and returns the
// TLS configuration for the engine at host (tcp://HOST:PORT). Each error is
// one line that names the file, the cause and what to do. now is the time
// the client certificate must be valid at.
func (s engineTLS) clientConfig(host string, now time.Time) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !s.Verify} //nolint:gosec // DOCKER_TLS without DOCKER_TLS_VERIFY asks for exactly that
	if s.Verify {
		pool, err := s.caPool(now)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	cert, err := s.clientCertificate(now)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	if hostname, _, err := net.SplitHostPort(strings.TrimPrefix(host, "tcp://")); err == nil {
		cfg.ServerName = hostname
	}
	return cfg, nil
}

func (s engineTLS) caPool(now time.Time) (*x509.CertPool, error) {
	path := s.file("ca.pem")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("TLS: cannot read the CA certificate %s (DOCKER_TLS_VERIFY is set, so the engine is checked against it): %s; put the certificate of the CA that signed the engine's there, in %s", path, fileProblem(err), s.where())
	}
	certs, err := pemCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("TLS: the CA certificate %s %s; it must hold the CA's certificate in PEM (-----BEGIN CERTIFICATE-----)", path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// clientCertificate loads cert.pem and key.pem; nil when neither exists,
// as the docker CLI then sends no certificate.
func (s engineTLS) clientCertificate(now time.Time) (*tls.Certificate, error) {
	certPath, keyPath := s.file("cert.pem"), s.file("key.pem")
	certData, certErr := os.ReadFile(certPath)
	keyData, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil
	case certErr != nil:
		return nil, fmt.Errorf("TLS: cannot read the client certificate %s: %s; put the engine's client certificate there (with its key in key.pem), in %s", certPath, fileProblem(certErr), s.where())
	case keyErr != nil:
		return nil, fmt.Errorf("TLS: cannot read the client key %s: %s; put the key of cert.pem there, in %s", keyPath, fileProblem(keyErr), s.where())
	}
	certs, err := pemCertificates(certData)
	if err != nil {
		return nil, fmt.Errorf("TLS: the client certificate %s %s; it must hold the certificate in PEM (-----BEGIN CERTIFICATE-----)", certPath, err)
	}
	block, _ := pem.Decode(keyData)
	if block == nil || !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("TLS: the client key %s is not a PEM private key (-----BEGIN ... PRIVATE KEY-----); put the key of cert.pem there", keyPath)
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, fmt.Errorf("TLS: the client key %s is encrypted, and nothing could type its passphrase; decrypt it (openssl pkey -in key.pem -out key.pem)", keyPath)
	}
	pair, err := tls.X509KeyPair(certData, keyData)
	if err != nil {
		return nil, fmt.Errorf("TLS: the client key %s does not belong to the certificate %s (%v); put the pair that was issued together there", keyPath, certPath, err)
	}
	leaf := certs[0]
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("TLS: the client certificate %s expired on %s; issue a new one with the engine's CA", certPath, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("TLS: the client certificate %s is not valid before %s, and this machine's clock says %s; check the clock, or wait", certPath, leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return &pair, nil
}

// pemCertificates parses every CERTIFICATE block of data; its error reads
// after the file's name.
func pemCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("holds a certificate that cannot be parsed (%v)", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("holds no PEM certificate")
	}
	return certs, nil
}

// fileProblem says why a file could not be read, without repeating its path.
func fileProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("permission denied for uid %d", os.Getuid())
	}
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err.Error()
	}
	return err.Error()
}

// explainTLSFailure turns a failed first request to the engine at host into
// one line naming the file and the cause, or "" when err is not about TLS.
// The docker client's own hints are matched by their text; that is isolated
// here and tested against a real TLS server.
func (s engineTLS) explainTLSFailure(host string, err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	var remote *net.OpError
	switch {
	case errors.As(err, &unknownCA):
		issuer := "an unknown issuer"
		if unknownCA.Cert != nil {
			issuer = fmt.Sprintf("%q", unknownCA.Cert.Issuer.String())
		}
		return fmt.Sprintf("TLS: the engine at %s presents a certificate signed by %s, not by the CA in %s; put the CA that signed the engine's certificate in ca.pem (from %s)", host, issuer, s.file("ca.pem"), s.where())
	case errors.As(err, &hostname):
		return fmt.Sprintf("TLS: the engine's certificate is for %s, not for %q that DOCKER_HOST (or --host) names; use one of those names in DOCKER_HOST, or reissue the engine's certificate with %q in its subjectAltName", certNames(hostname.Certificate), hostname.Host, hostname.Host)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Sprintf("TLS: the engine at %s presents a certificate that has expired or is not yet valid (%s); renew the engine's certificate (its --tlscert), or check this machine's clock", host, invalid.Detail)
	case errors.As(err, &invalid):
		return fmt.Sprintf("TLS: the engine at %s presents a certificate that cannot be used: %v; check the engine's --tlscert against ca.pem in %s", host, err, s.Dir)
	case errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("TLS: the engine at %s answers without TLS, while DOCKER_TLS_VERIFY or DOCKER_TLS asks for it; point DOCKER_HOST at the engine's TLS port (usually 2376), or set up TLS on the engine (see docs/remote-engine.md)", host)
	case strings.Contains(err.Error(), "Client sent an HTTP request to an HTTPS server") || strings.Contains(err.Error(), "TLS-enabled daemon without TLS"):
		return fmt.Sprintf("TLS: the engine at %s speaks TLS, and sibling-run connected without it; set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory that holds ca.pem, cert.pem and key.pem (as for the docker CLI, DOCKER_CERT_PATH alone does not turn TLS on)", host)
	case errors.As(err, &remote) && remote.Op == "remote error":
		return s.explainAlert(host, remote.Err.Error())
	}
	return ""
}

// explainAlert explains an alert the engine sent during the handshake: it
// refused this client's certificate, or that there was none.
func (s engineTLS) explainAlert(host, alert string) string {
	cert := s.file("cert.pem")
	_, statErr := os.Stat(cert)
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		return fmt.Sprintf("TLS: the engine at %s asks for a client certificate (%s), and there is none: %s does not exist; put the client certificate and its key (cert.pem, key.pem) issued by the engine's CA in %s", host, alert, cert, s.where())
	case strings.Contains(alert, "certificate required"):
		// Go sends only a certificate that the engine's list of CAs accepts.
		return fmt.Sprintf("TLS: the engine at %s asks for a client certificate issued by its CA, and %s is not (%s), so none was sent; put one issued by the CA of the engine's --tlscacert there", host, cert, alert)
	case strings.Contains(alert, "unknown certificate authority") || strings.Contains(alert, "bad certificate"):
		return fmt.Sprintf("TLS: the engine at %s refused the client certificate %s (%s); it must be issued by the CA of the engine's --tlscacert, for client authentication (extendedKeyUsage clientAuth)", host, cert, alert)
	case strings.Contains(alert, "certificate expired"):
		return fmt.Sprintf("TLS: the engine at %s says the client certificate %s has expired (%s); issue a new one with the engine's CA", host, cert, alert)
	}
	return fmt.Sprintf("TLS: the engine at %s ended the handshake (%s); check the client certificate %s against the engine's --tlscacert", host, alert, cert)
}

// certNames lists the names a certificate is valid for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "other names"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return fmt.Sprintf("no name in its subjectAltName (its subject is %q, which TLS no longer reads)", c.Subject.CommonName)
	}
	return strings.Join(names, ", ")
}

// tlsFilesInWorkdir refuses a certificate directory inside the working
// directory: the build could read the client key there, and in the copy
// mode it would be copied to the engine with the rest.
func tlsFilesInWorkdir(environ []string, host, workdir string) error {
	s := readEngineTLS(environ)
	if !s.On || !strings.HasPrefix(host, "tcp://") {
		return nil
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return nil
	}
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	if rel, err := filepath.Rel(workdir, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return fmt.Errorf("the engine's TLS client key and certificates (%s, %s) are inside the working directory %s, where the build could read them; keep them outside it (DOCKER_CERT_PATH)", s.Dir, s.where(), workdir)
	}
	return nil
}
