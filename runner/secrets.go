package runner

import "strings"

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
