package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"hotline/deploy/testenv"
)

// manifestNode is one hotline process a deployment file describes: the environment it sets, with secret
// references left to the test to fill.
type manifestNode struct {
	name    string
	env     map[string]string // literal values
	secrets map[string]string // variable → secret key (k8s secretKeyRef, or the file name of a compose _FILE)
	fields  map[string]string // variable → k8s fieldRef path
}

func composeNodes(t *testing.T, path string) []manifestNode {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string
			Command     []string
			Environment map[string]string
		}
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []manifestNode
	for name, s := range doc.Services {
		if !strings.HasPrefix(s.Image, "hotline") || len(s.Command) == 0 || s.Command[0] != "serve" {
			continue
		}
		n := manifestNode{name: "compose " + name, env: map[string]string{}, secrets: map[string]string{}}
		for k, v := range s.Environment {
			if strings.HasSuffix(k, "_FILE") && strings.HasPrefix(v, "/run/secrets/") {
				n.secrets[k] = strings.TrimPrefix(v, "/run/secrets/")
				continue
			}
			n.env[k] = v
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func k8sNodes(t *testing.T, path string) []manifestNode {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type envVar struct {
		Name      string
		Value     string
		ValueFrom struct {
			SecretKeyRef struct{ Name, Key string } `yaml:"secretKeyRef"`
			FieldRef     struct{ FieldPath string } `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	type object struct {
		Kind     string
		Metadata struct{ Name string }
		Data     map[string]string
		Spec     struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args    []string
						Env     []envVar
						EnvFrom []struct {
							ConfigMapRef struct{ Name string } `yaml:"configMapRef"`
						} `yaml:"envFrom"`
					}
				}
			}
		}
	}
	dec := yaml.NewDecoder(f)
	configMaps := map[string]map[string]string{}
	var deployments []object
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch o.Kind {
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "Deployment":
			deployments = append(deployments, o)
		}
	}
	var out []manifestNode
	for _, d := range deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if len(c.Args) == 0 || c.Args[0] != "serve" {
				continue
			}
			n := manifestNode{name: "k8s " + d.Metadata.Name, env: map[string]string{}, secrets: map[string]string{}, fields: map[string]string{}}
			for _, ef := range c.EnvFrom {
				cm, ok := configMaps[ef.ConfigMapRef.Name]
				if !ok {
					t.Fatalf("%s: ConfigMap %q is not in the file", n.name, ef.ConfigMapRef.Name)
				}
				for k, v := range cm {
					n.env[k] = v
				}
			}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom.SecretKeyRef.Key != "":
					n.secrets[e.Name] = e.ValueFrom.SecretKeyRef.Key
				case e.ValueFrom.FieldRef.FieldPath != "":
					n.fields[e.Name] = e.ValueFrom.FieldRef.FieldPath
				default:
					n.env[e.Name] = e.Value
				}
			}
			out = append(out, n)
		}
	}
	return out
}

var hostPort = regexp.MustCompile(`([A-Za-z0-9_.$()\-]+):([0-9]{2,5})\b`)

// environ turns a node's environment into one for this machine: secrets get test values (as files for _FILE),
// the pod IP is loopback, every listening address gets a free loopback port (udp and tcp of one port stay
// together), the Sentinels are the test's, and absolute paths move under dir. Nothing is added: a variable the
// manifest forgets is missing here too.
func (n manifestNode) environ(t *testing.T, dir string, secretValues map[string]string, sentinel string) []string {
	t.Helper()
	vars := map[string]string{}
	for k, f := range n.fields {
		if f != "status.podIP" {
			t.Fatalf("%s: %s from field %s: unknown to the test", n.name, k, f)
		}
		vars[k] = "127.0.0.1"
	}
	for k, key := range n.secrets {
		v, ok := secretValues[key]
		if !ok {
			t.Fatalf("%s: %s names secret %q, unknown to the test", n.name, k, key)
		}
		if strings.HasSuffix(k, "_FILE") {
			p := filepath.Join(dir, "secret-"+key)
			if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
				t.Fatal(err)
			}
			v = p
		}
		vars[k] = v
	}
	ports := map[string]int{}
	for k, v := range n.env {
		v = regexp.MustCompile(`\$\(([A-Z_]+)\)`).ReplaceAllStringFunc(v, func(m string) string { return vars[m[2:len(m)-1]] })
		switch {
		case k == "HOTLINE_REDIS_SENTINELS":
			v = sentinel
		case strings.HasSuffix(k, "_ADDR") || strings.HasSuffix(k, "_LISTEN"):
			v = hostPort.ReplaceAllStringFunc(v, func(m string) string {
				port := hostPort.FindStringSubmatch(m)[2]
				if _, ok := ports[port]; !ok {
					ports[port] = testenv.FreePort(t)
				}
				return fmt.Sprintf("127.0.0.1:%d", ports[port])
			})
		case strings.HasSuffix(k, "_DIR") && strings.HasPrefix(v, "/"):
			v = filepath.Join(dir, v)
		}
		vars[k] = v
	}
	var out []string
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// startSentinel runs a Redis and one Sentinel watching it as "hotline", and returns the Sentinel's address.
func startSentinel(t *testing.T) string {
	t.Helper()
	dir := testenv.TempDir(t)
	rport, sport := testenv.FreePort(t), testenv.FreePort(t)
	start := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	start("redis-server", "--port", fmt.Sprint(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	conf := filepath.Join(dir, "sentinel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor hotline 127.0.0.1 %d 1\n", sport, dir, rport)), 0o600)
	start("redis-sentinel", conf)
	return fmt.Sprintf("127.0.0.1:%d", sport)
}

// TestManifestsStartServe runs `hotline serve` with exactly the environment each hotline process of
// deploy/compose.yaml and deploy/k8s/hotline.yaml sets (secrets filled in, addresses moved to loopback): every
// one must become ready and stop cleanly on SIGTERM, so a variable a manifest forgets (the PII key, say) fails
// here rather than at a bureau's first start.
func TestManifestsStartServe(t *testing.T) {
	nodes := append(composeNodes(t, "../../deploy/compose.yaml"), k8sNodes(t, "../../deploy/k8s/hotline.yaml")...)
	if len(nodes) < 5 {
		t.Fatalf("%d hotline processes in the manifests, want 3 in compose and 2 deployments in k8s", len(nodes))
	}
	db := testenv.DatabaseURL(t)
	sentinel := startSentinel(t)
	secrets := map[string]string{
		"database_url": db, "database-url": db,
		"pii_key": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)), "pii-key": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
		"redis-url":  "redis://127.0.0.1:6379/0", // with Sentinels only the password and database count
		"sip-trunks": "name=12345,net=127.0.0.1/32,numbers=12345",
	}
	bin := hotlineBinary(t)
	for _, n := range nodes {
		t.Run(strings.ReplaceAll(n.name, " ", "_"), func(t *testing.T) {
			dir := testenv.TempDir(t)
			env := n.environ(t, dir, secrets, sentinel)
			cmd := exec.Command(bin, "serve")
			cmd.Dir = dir
			cmd.Env = append(cleanEnv(), env...)
			p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
			cmd.Stdout, cmd.Stderr = p.out, p.out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { p.exitEr = cmd.Wait(); close(p.done) }()
			t.Cleanup(func() {
				select {
				case <-p.done:
				default:
					cmd.Process.Kill()
					<-p.done
				}
			})
			var http string
			for _, kv := range env {
				if v, ok := strings.CutPrefix(kv, "HOTLINE_HTTP_ADDR="); ok {
					http = v
				}
			}
			if http == "" {
				t.Fatalf("%s sets no HOTLINE_HTTP_ADDR: the probes and the balancer need one", n.name)
			}
			waitReady(t, p, "http://"+http)
			if out := p.out.String(); strings.Contains(out, "unknown environment variable") {
				t.Errorf("%s sets a variable hotline does not know:\n%s", n.name, out)
			}
			// The container health check the compose file uses.
			hc := exec.Command(bin, "health", "readyz")
			hc.Env = append(cleanEnv(), env...)
			if out, err := hc.CombinedOutput(); err != nil {
				t.Errorf("hotline health readyz: %v %s", err, out)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(t, 60*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM:\n%s", code, p.out.String())
			}
		})
	}
}
