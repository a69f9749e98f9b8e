package runner

import (
	"strconv"
	"strings"
)

// secretMask replaces the value of a secret variable in everything sibling-run
// prints itself, as Bamboo does in its logs.
const secretMask = "********"

// isSecretName applies Bamboo's rule: a variable whose name contains
// "password", "passphrase", "secret" or "sshkey", in any case, is a secret.
func isSecretName(name string) bool {
	lower := strings.ToLower(name)
	for _, word := range []string{"password", "passphrase", "secret", "sshkey"} {
		if strings.Contains(lower, word) {
			return true
		}
	}
	return false
}

// maskSecrets returns a copy of env with the values of secret variables
// replaced by secretMask. The build itself always gets the real values.
func maskSecrets(env []string) []string {
	masked := make([]string, len(env))
	for i, kv := range env {
		name, _, hasValue := strings.Cut(kv, "=")
		if hasValue && isSecretName(name) {
			kv = name + "=" + secretMask
		}
		masked[i] = kv
	}
	return masked
}

// hideSecretValues returns err with the value of every secret variable of
// env masked in its message, for errors whose text sibling-run does not
// control (the engine's). The error still unwraps to err, exit code and all.
func hideSecretValues(err error, env []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	hidden := msg
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" || !isSecretName(name) {
			continue
		}
		quoted := strconv.Quote(value) // as the engine may print it
		for _, spelling := range []string{value, quoted[1 : len(quoted)-1]} {
			hidden = strings.ReplaceAll(hidden, spelling, secretMask)
		}
	}
	if hidden == msg {
		return err
	}
	return &maskedError{msg: hidden, err: err}
}

// maskedError is an error whose message has secrets masked.
type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }
