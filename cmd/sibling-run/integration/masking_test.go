package integration

import (
	"strings"
	"testing"
)

// Issue 21, item 8: a token variable was printed by --dry-run, the list of
// secret names could not be extended, and a one-character secret mangled
// every digit in the text. The build still gets every real value.
func TestSecretsAreMaskedByTheWordsAnAdministratorGives(t *testing.T) {
	env := []string{
		"bamboo_api_token=tok-value-1234", "bamboo_npm_auth=auth-value-5678",
		"bamboo_db_password=5", "bamboo_plain=visible-value",
		"SIBLING_RUN_SECRET_NAMES=Auth",
	}
	r := siblingRun(t, t.TempDir(), env, buildArgs("--dry-run", "--", "true")...)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	for _, value := range []string{"tok-value-1234", "auth-value-5678", `bamboo_db_password=5"`} {
		if strings.Contains(r.stdout+r.stderr, value) {
			t.Errorf("--dry-run printed %q:\n%s\n%s", value, r.stdout, r.stderr)
		}
	}
	for _, want := range []string{`"bamboo_api_token=********"`, `"bamboo_npm_auth=********"`, `"bamboo_plain=visible-value"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--dry-run does not show %s:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "shorter than 6 characters") || !strings.Contains(r.stderr, "bamboo_db_password") {
		t.Errorf("no warning names the short secret:\n%s", r.stderr)
	}

	// The build gets the real values.
	r = siblingRun(t, t.TempDir(), env, buildArgs("--", "sh", "-c", "echo $bamboo_api_token $bamboo_npm_auth $bamboo_db_password")...)
	if r.code != 0 || !hasLine(r.stdout, "tok-value-1234 auth-value-5678 5") {
		t.Errorf("exit %d, the build did not get the real values:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
