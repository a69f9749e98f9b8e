package runner

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"github.com/rs/zerolog"
)

func TestServiceAlias(t *testing.T) {
	for _, tt := range []struct{ image, want string }{
		{"postgres", "postgres"},
		{"library/postgres:15", "postgres"},
		{"registry.example.com:5000/team/redis:7-alpine", "redis"},
		{"mysql@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "mysql"},
		{"team/My_Queue:1", "my-queue"},
		{"org/selenium.standalone-chrome", "selenium-standalone-chrome"},
		{"___", ""},
		{"a/" + strings.Repeat("x", 70), strings.Repeat("x", 63)},
	} {
		if got := serviceAlias(tt.image); got != tt.want {
			t.Errorf("serviceAlias(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}

func FuzzServiceAlias(f *testing.F) {
	for _, seed := range []string{"library/postgres:15", "a/b@sha256:00", "-x-", "Ünïcode/ÄB"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, image string) {
		if alias := serviceAlias(image); alias != "" && !dnsLabel.MatchString(alias) {
			t.Errorf("serviceAlias(%q) = %q, not a DNS label", image, alias)
		}
	})
}

func TestParseServices(t *testing.T) {
	base := Config{ServiceTimeout: time.Minute}
	for _, tt := range []struct {
		name    string
		entries []string
		network string
		timeout time.Duration
		want    []service
		wantErr string
	}{
		{name: "none", want: nil},
		{name: "derived and given aliases", entries: []string{"library/postgres:15", "redis:7=cache", "web=Front"},
			want: []service{{"library/postgres:15", "postgres"}, {"redis:7", "cache"}, {"web", "front"}}},
		{name: "duplicate derived", entries: []string{"a/web:1", "b/web:2"}, wantErr: "both have the alias web"},
		{name: "duplicate given", entries: []string{"x=db", "y=DB"}, wantErr: "both have the alias db"},
		{name: "alias not a DNS label", entries: []string{"web=under_score"}, wantErr: "not a DNS label"},
		{name: "empty alias", entries: []string{"web="}, wantErr: "not a DNS label"},
		{name: "no image", entries: []string{"=web"}, wantErr: "names no image"},
		{name: "no alias derivable", entries: []string{"___"}, wantErr: "IMAGE=ALIAS"},
		{name: "with --network", entries: []string{"web"}, network: "ci", wantErr: "--network ci cannot be combined"},
		{name: "no timeout", entries: []string{"web"}, timeout: -1, wantErr: "--service-timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.Services, cfg.Network = tt.entries, tt.network
			if tt.timeout != 0 {
				cfg.ServiceTimeout = tt.timeout
			}
			got, err := parseServices(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestServicesPutTheBuildOnTheirNetwork(t *testing.T) {
	cfg := baseConfig()
	cfg.Services, cfg.ServiceTimeout = []string{"postgres"}, time.Minute
	sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
	if err != nil {
		t.Fatal(err)
	}
	services, err := parseServices(cfg)
	if err != nil {
		t.Fatal(err)
	}
	withServices(&sp, services)
	if got := string(sp.HostConfig.NetworkMode); got != sp.Name {
		t.Errorf("NetworkMode = %q, want the network named after the sibling, %q", got, sp.Name)
	}
	labels := withRole(sp.Config.Labels, "service")
	if labels[LabelRole] != "service" || labels[LabelOwner] != testOwner.ID || sp.Config.Labels[LabelRole] != "" {
		t.Errorf("service labels %v: want the sibling's owner labels plus the role, without changing the sibling's", labels)
	}
}

func TestLowestTCPPort(t *testing.T) {
	for _, tt := range []struct {
		ports []string
		want  int
	}{
		{nil, 0},
		{[]string{"53/udp"}, 0},
		{[]string{"8080/tcp"}, 8080},
		{[]string{"9000/tcp", "5432/tcp", "53/udp", "6000"}, 5432},
	} {
		set := nat.PortSet{}
		for _, p := range tt.ports {
			set[nat.Port(p)] = struct{}{}
		}
		if got := lowestTCPPort(set); got != tt.want {
			t.Errorf("lowestTCPPort(%v) = %d, want %d", tt.ports, got, tt.want)
		}
	}
}

func TestHasHealthcheck(t *testing.T) {
	for _, tt := range []struct {
		hc   *container.HealthConfig
		want bool
	}{
		{nil, false},
		{&container.HealthConfig{}, false},
		{&container.HealthConfig{Test: []string{"NONE"}}, false},
		{&container.HealthConfig{Test: []string{"CMD-SHELL", "pg_isready"}}, true},
	} {
		if got := hasHealthcheck(&container.Config{Healthcheck: tt.hc}); got != tt.want {
			t.Errorf("hasHealthcheck(%+v) = %v, want %v", tt.hc, got, tt.want)
		}
	}
}

func TestLineTailKeepsTheLastLines(t *testing.T) {
	tail := newLineTail(3, zerolog.Nop())
	for _, chunk := range []string{"one\ntw", "o\r\nthree\n", "four\nfi", "ve"} {
		if _, err := tail.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	tail.flush()
	if got, want := tail.lines(), []string{"three", "four", "five"}; !reflect.DeepEqual(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

func TestTimeoutCause(t *testing.T) {
	ctx, cancel := withBuildTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	<-ctx.Done()
	var timeout *TimeoutError
	if cause := context.Cause(ctx); !errors.As(cause, &timeout) || timeout.ExitCode() != 124 || !strings.Contains(cause.Error(), "timed out after 10ms") {
		t.Errorf("cause = %v, want a TimeoutError with exit code 124 saying how long", cause)
	}
	ctx, cancel = withBuildTimeout(context.Background(), 0)
	defer cancel()
	select {
	case <-ctx.Done():
		t.Error("a timeout of 0 must mean none")
	case <-time.After(20 * time.Millisecond):
	}
}
