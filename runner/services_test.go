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

func TestCheckServices(t *testing.T) {
	web := []ServiceSpec{{Image: "web", Alias: "web"}}
	for _, tt := range []struct {
		name     string
		services []ServiceSpec
		network  string
		timeout  time.Duration
		wantErr  string // "" for none
	}{
		{name: "none", network: "ci", timeout: -1},
		{name: "two", services: []ServiceSpec{{"library/postgres:15", "postgres"}, {"redis:7", "cache"}}, timeout: time.Minute},
		{name: "with --network", services: web, network: "ci", timeout: time.Minute, wantErr: "--network ci cannot be combined"},
		{name: "no timeout", services: web, timeout: -1, wantErr: "--service-timeout"},
		{name: "zero timeout", services: web, wantErr: "--service-timeout"},
		// cmd/ derives and checks aliases; a Config built elsewhere gets the same guard.
		{name: "duplicate alias", services: []ServiceSpec{{"a/web:1", "web"}, {"b/web:2", "web"}}, timeout: time.Minute, wantErr: "DNS label no other service has"},
		{name: "alias not a DNS label", services: []ServiceSpec{{"web", "Web_1"}}, timeout: time.Minute, wantErr: "--service web=Web_1"},
		{name: "no alias", services: []ServiceSpec{{"web", ""}}, timeout: time.Minute, wantErr: "alias"},
		{name: "no image", services: []ServiceSpec{{"", "web"}}, timeout: time.Minute, wantErr: "give an image"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Services: tt.services, Network: tt.network, ServiceTimeout: tt.timeout}
			err := checkServices(cfg)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestServicesPutTheBuildOnTheirNetwork(t *testing.T) {
	cfg := baseConfig()
	cfg.Services, cfg.ServiceTimeout = []ServiceSpec{{Image: "postgres", Alias: "postgres"}}, time.Minute
	sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
	if err != nil {
		t.Fatal(err)
	}
	withServices(&sp, cfg.Services)
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
