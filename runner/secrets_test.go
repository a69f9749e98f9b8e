package runner

import (
	"reflect"
	"testing"
)

func TestIsSecret(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"bamboo_password", true},
		{"bamboo_PASSWORD", true},
		{"DB_PassWord_2", true},
		{"bamboo_gpg_passphrase", true},
		{"bamboo_secret", true},
		{"bamboo_SecretToken", true},
		{"bamboo_deploy_sshKey", true},
		{"SSHKEY", true},
		// Not in Bamboo's default list, but what users expect.
		{"bamboo_api_token", true},
		{"GITHUB_TOKEN", true},
		// Added with --secret-names.
		{"bamboo_npm_auth", true},
		{"DEPLOY_CREDENTIALS", true},
		{"bamboo_buildResultKey", false},
		{"bamboo_repository_branch_name", false},
		{"PASS", false},
		{"PASSWD", false},
		{"PWD", false},
		// The words must be whole: a separator breaks them.
		{"SSH_KEY", false},
		{"PASS_WORD", false},
		{"SECRE", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := newSecretNames([]string{"Auth", " credential ", ""}).isSecret(tt.name); got != tt.want {
			t.Errorf("isSecret(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMaskSecrets(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"nil", nil, []string{}},
		{"no secrets",
			[]string{"A=1", "bamboo_buildResultKey=PROJ-PLAN-JOB1-42"},
			[]string{"A=1", "bamboo_buildResultKey=PROJ-PLAN-JOB1-42"}},
		{"secrets masked, order kept",
			[]string{"A=1", "bamboo_password=hunter2", "B=2", "GPG_PASSPHRASE=correct horse", "bamboo_sshKey=-----BEGIN KEY-----"},
			[]string{"A=1", "bamboo_password=********", "B=2", "GPG_PASSPHRASE=********", "bamboo_sshKey=********"}},
		{"value with = masked whole", []string{"MY_SECRET=a=b=c"}, []string{"MY_SECRET=********"}},
		// An empty secret is still masked so its emptiness does not show.
		{"empty secret", []string{"bamboo_password="}, []string{"bamboo_password=********"}},
		{"name without value kept", []string{"bamboo_password"}, []string{"bamboo_password"}},
		{"secret word in the value only", []string{"HINT=password"}, []string{"HINT=password"}},
		// Beside its name a short value hides nothing else: masked too.
		{"short secret", []string{"bamboo_password=5"}, []string{"bamboo_password=********"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []string
			if tt.env != nil {
				before = append([]string{}, tt.env...)
			}
			got := newSecretNames(nil).mask(tt.env)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("mask(%q) = %q, want %q", tt.env, got, tt.want)
			}
			// The build gets the real values: the input must be left alone.
			if !reflect.DeepEqual(tt.env, before) {
				t.Errorf("mask changed its input to %q, want %q", tt.env, before)
			}
		})
	}
}

// A secret too short to be masked in text is named, never shown, so that a
// warning can say it is not masked.
func TestTooShortNamesTheVariables(t *testing.T) {
	env := []string{"bamboo_password=1", "DB_SECRET=abcde", "api_token=abcdef", "EMPTY_SECRET=", "PLAIN=1", "UNICODE_SECRET=ééééé"}
	got := newSecretNames(nil).tooShort(env)
	want := []string{"bamboo_password", "DB_SECRET", "UNICODE_SECRET"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tooShort = %q, want %q", got, want)
	}
}
