package runner

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// secretMask replaces the value of a secret variable in everything sibling-run
// prints itself, as Bamboo does in its logs.
const secretMask = "********"

// minMaskedLength is the shortest value that is replaced where it appears in
// text (an engine's error): a shorter one would turn "port 5432" into
// "port ********432" and mask nothing worth hiding. Buildkite draws the same
// line.
const minMaskedLength = 6

// defaultSecretNames are Bamboo's words for a secret variable's name, and
// "token", which Bamboo's default list lacks (bamboo_api_token was printed).
var defaultSecretNames = []string{"password", "passphrase", "secret", "sshkey", "token"}

// secretNames decides which variables are secrets: those whose names contain
// one of its words, in any case, as Bamboo decides.
type secretNames []string

// newSecretNames returns the default words and extra ones (the user's,
// --secret-names); empty ones are dropped.
func newSecretNames(extra []string) secretNames {
	names := secretNames(append([]string{}, defaultSecretNames...))
	for _, word := range extra {
		if word = strings.ToLower(strings.TrimSpace(word)); word != "" {
			names = append(names, word)
		}
	}
	return names
}

// isSecret reports whether the variable name is a secret.
func (s secretNames) isSecret(name string) bool {
	lower := strings.ToLower(name)
	for _, word := range s {
		if strings.Contains(lower, word) {
			return true
		}
	}
	return false
}

// mask returns a copy of env with the values of secret variables replaced
// by secretMask, whatever their length: shown beside its name, a value hides
// nothing else. The build itself always gets the real values.
func (s secretNames) mask(env []string) []string {
	masked := make([]string, len(env))
	for i, kv := range env {
		name, _, hasValue := strings.Cut(kv, "=")
		if hasValue && s.isSecret(name) {
			kv = name + "=" + secretMask
		}
		masked[i] = kv
	}
	return masked
}

// tooShort returns the names of the secret variables of env whose values
// are too short for hide to mask (see minMaskedLength); empty ones hide
// nothing and are left out.
func (s secretNames) tooShort(env []string) []string {
	var names []string
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if n := utf8.RuneCountInString(value); n > 0 && n < minMaskedLength && s.isSecret(name) {
			names = append(names, name)
		}
	}
	return names
}

// hide returns err with the value of every secret variable of env masked
// in its message, for errors whose text sibling-run does not control (the
// engine's); values shorter than minMaskedLength are left. The error still
// unwraps to err, exit code and all.
func (s secretNames) hide(err error, env []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	hidden := msg
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if utf8.RuneCountInString(value) < minMaskedLength || !s.isSecret(name) {
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
