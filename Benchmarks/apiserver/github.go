package main

// `apiserver github`: the two GitHub REST calls on a delivery's path (GET a job, POST a JIT config), and the DELETE of
// a registration a failed delivery cleans up (204 for a runner it registered, else 404), answered after a
// fixed latency, over TLS with HTTP/2 as GitHub serves them, so that the benchmark's GitHub side costs little CPU and
// never becomes the bottleneck it measures the service against. Every job asked for is queued with the labels
// [self-hosted, linux]; a runner name used twice is a 409, as on GitHub.

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type github struct {
	token    string
	latency  time.Duration
	job      map[string]any
	jit      map[string]any
	mu       sync.Mutex
	names    map[string]bool
	runners  map[int64]bool
	nextID   atomic.Int64
	requests atomic.Int64
}

var (
	jobPath    = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/actions/jobs/(\d+)$`)
	jitPath    = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/actions/runners/generate-jitconfig$`)
	runnerPath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/actions/runners/(\d+)$`)
)

func serveGitHub(arguments []string) {
	flags := flag.NewFlagSet("github", flag.ExitOnError)
	cert := flags.String("cert", "", "server certificate (PEM)")
	key := flags.String("key", "", "server key (PEM)")
	token := flags.String("token", "", "the bearer token every request must carry")
	latency := flags.Duration("latency", time.Millisecond, "added to every answer")
	fixtures := flags.String("fixtures", "", "the folder holding job.get.200.json and generate-jitconfig.201.json")
	_ = flags.Parse(arguments)

	g := &github{token: *token, latency: *latency, names: map[string]bool{}, runners: map[int64]bool{}}
	g.nextID.Store(100)
	for name, target := range map[string]*map[string]any{"job.get.200.json": &g.job, "generate-jitconfig.201.json": &g.jit} {
		data, err := os.ReadFile(*fixtures + "/" + name)
		if err != nil {
			fail(err)
		}
		if err := json.Unmarshal(data, target); err != nil {
			fail(err)
		}
	}
	serveTLS("127.0.0.1:0", *cert, *key, 100, g) // GitHub allows 100 streams per connection
}

func (g *github) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.requests.Add(1)
	time.Sleep(g.latency)
	header := w.Header()
	header.Set("Content-Type", "application/json; charset=utf-8")
	header.Set("X-RateLimit-Limit", "1000000")
	header.Set("X-RateLimit-Remaining", "999999")
	header.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	header.Set("X-RateLimit-Resource", "core")
	header.Set("X-GitHub-Request-Id", newUID()[:17])
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		gitHubError(w, 401, "Bad credentials")
		return
	}
	if m := jobPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
		id, _ := strconv.ParseInt(m[3], 10, 64)
		job := make(map[string]any, len(g.job))
		for k, v := range g.job {
			job[k] = v
		}
		job["id"], job["run_id"], job["status"], job["conclusion"] = id, id, "queued", nil
		job["labels"] = []string{"self-hosted", "linux"}
		job["runner_id"], job["runner_name"] = nil, nil
		writeJSON(w, 200, job)
		return
	}
	if m := jitPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
		var request struct {
			Name   string   `json:"name"`
			Labels []string `json:"labels"`
		}
		data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(data, &request); err != nil || request.Name == "" || len(request.Labels) == 0 {
			gitHubError(w, 422, "Invalid request.")
			return
		}
		g.mu.Lock()
		clash := g.names[request.Name]
		g.names[request.Name] = true
		g.mu.Unlock()
		if clash {
			gitHubError(w, 409, "Already exists - A runner with the name *** already exists.")
			return
		}
		id := g.nextID.Add(1)
		g.mu.Lock()
		g.runners[id] = true
		g.mu.Unlock()
		runner := make(map[string]any)
		for k, v := range g.jit["runner"].(map[string]any) {
			runner[k] = v
		}
		runner["id"], runner["name"] = id, request.Name
		config, _ := json.Marshal(map[string]any{"agentId": id, "agentName": request.Name})
		writeJSON(w, 201, map[string]any{"runner": runner,
			"encoded_jit_config": base64.StdEncoding.EncodeToString(config)})
		return
	}
	if m := runnerPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodDelete {
		id, _ := strconv.ParseInt(m[3], 10, 64)
		g.mu.Lock()
		known := g.runners[id]
		delete(g.runners, id)
		g.mu.Unlock()
		if known {
			w.WriteHeader(204)
			return
		}
	}
	gitHubError(w, 404, "Not Found")
}

func gitHubError(w http.ResponseWriter, code int, message string) {
	writeJSON(w, code, map[string]any{"message": message, "documentation_url": "https://docs.github.com/rest",
		"status": strconv.Itoa(code)})
}
