// An API server-like peer for the burst benchmark: the subset of the Kubernetes API that kube-actions-runner
// calls, served the way kube-apiserver serves it, so that the time a burst spends between the service and its API
// server can be measured here (the Python fakes answer from one event loop with no work per request).
//
// What it shares with kube-apiserver: Go's HTTP/2 server over TLS (one reader per connection, handlers in parallel
// goroutines, a per-connection stream limit), bearer-token authentication on every request, a bound on mutating
// requests in flight that queues the rest (as the max-in-flight filter / API Priority and Fairness do), real work per
// request (decode, validate, default, add metadata with managedFields, encode, store, answer with the whole object),
// and a storage write latency (etcd's commit) that runs in parallel across requests. What it leaves out: admission
// webhooks, watch, controllers (no pods are made).
//
//	apiserver serve -cert C -key K -token T [-max-streams 250] [-max-mutating-inflight 200] [-write-latency 2ms]
//	apiserver client -url U -ca C -token T -namespace N -count 1000 -workers 200 -job F [-http2]
//	apiserver github -cert C -key K -token T -latency 1ms -fixtures DIR      (github.go)
//
// `serve` prints {"url": ...} on its first line. `client` is the plain client the service is measured against: it
// creates COUNT Jobs and, for each, a Secret owned by it (the service's writes), WORKERS at a time, each worker on a
// connection of its own, and prints {"seconds": ...}.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: apiserver serve|client|github [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "client":
		client(os.Args[2:])
	case "github":
		serveGitHub(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: apiserver serve|client|github [flags]")
		os.Exit(2)
	}
}

// ---- the server ----

type object struct {
	resource  string
	namespace string
	name      string
	labels    map[string]string
	encoded   []byte
}

type store struct {
	mu       sync.RWMutex
	objects  map[string]*object // resource/namespace/name
	revision atomic.Int64
}

type server struct {
	token        string
	store        *store
	mutating     chan struct{}
	readonly     chan struct{}
	writeLatency time.Duration
	work         time.Duration
	listWork     time.Duration
	requests     atomic.Int64
	maxInFlight  atomic.Int64
	inFlight     atomic.Int64
}

func serve(arguments []string) {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	cert := flags.String("cert", "", "server certificate (PEM)")
	key := flags.String("key", "", "server key (PEM)")
	token := flags.String("token", "", "the bearer token every request must carry")
	listen := flags.String("listen", "127.0.0.1:0", "address")
	maxStreams := flags.Int("max-streams", 250, "concurrent HTTP/2 streams per connection (Go's default)")
	maxMutating := flags.Int("max-mutating-inflight", 200, "mutating requests served at once; more wait (kube-apiserver's default)")
	maxReadonly := flags.Int("max-readonly-inflight", 400, "read-only requests served at once; more wait (kube-apiserver's default)")
	writeLatency := flags.Duration("write-latency", 2*time.Millisecond, "storage commit time of each write")
	listWork := flags.Duration("list-work", 0, "CPU time a list costs per object it reads: the page's objects and "+
		"those its label selector passed over (storage filters after reading, as the API server's does)")
	work := flags.Duration("work", 0, "CPU time each write costs besides decoding and encoding (admission, validation, "+
		"conversion, audit, the watch cache: about 2.5ms on a real API server, see BENCHMARKS.md)")
	_ = flags.Parse(arguments)

	s := &server{
		token: *token, store: &store{objects: map[string]*object{}},
		mutating: make(chan struct{}, *maxMutating), readonly: make(chan struct{}, *maxReadonly),
		writeLatency: *writeLatency, work: *work, listWork: *listWork,
	}
	serveTLS(*listen, *cert, *key, *maxStreams, s)
}

// serveTLS serves handler over TLS with HTTP/2 (and HTTP/1.1 for clients that do not offer h2), printing
// {"url": ...} first, and never returns.
func serveTLS(address, cert, key string, maxStreams int, handler http.Handler) {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		fail(err)
	}
	certificate, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		fail(err)
	}
	connections := &counter
	httpServer := &http.Server{
		Handler:   handler,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{certificate}, NextProtos: []string{"h2", "http/1.1"}},
		HTTP2:     &http.HTTP2Config{MaxConcurrentStreams: maxStreams},
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				connections.Add(1)
			}
		},
	}
	fmt.Printf("{\"url\": \"https://%s\"}\n", listener.Addr().String())
	if err := httpServer.ServeTLS(listener, "", ""); err != nil {
		fail(err)
	}
}

// counter counts the connections the server accepted.
var counter atomic.Int64

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/__control/stats" {
		s.store.mu.RLock()
		count := len(s.store.objects)
		s.store.mu.RUnlock()
		writeJSON(w, 200, map[string]any{"requests": s.requests.Load(), "connections": counter.Load(),
			"max_in_flight": s.maxInFlight.Load(), "objects": count})
		return
	}
	s.requests.Add(1)
	now := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		seen := s.maxInFlight.Load()
		if now <= seen || s.maxInFlight.CompareAndSwap(seen, now) {
			break
		}
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		writeStatus(w, 401, "Unauthorized", "Unauthorized", nil)
		return
	}
	limit := s.readonly
	if r.Method != http.MethodGet {
		limit = s.mutating
	}
	select {
	case limit <- struct{}{}:
		defer func() { <-limit }()
	case <-time.After(60 * time.Second):
		w.Header().Set("Retry-After", "1")
		writeStatus(w, 429, "TooManyRequests", "Too many requests, please try again later.", nil)
		return
	case <-r.Context().Done():
		return
	}
	resource, namespace, name, ok := route(r.URL.Path)
	if !ok {
		writeStatus(w, 404, "NotFound", "the server could not find the requested resource", nil)
		return
	}
	switch {
	case r.Method == http.MethodPost && name == "":
		s.create(w, r, resource, namespace)
	case r.Method == http.MethodGet && name == "":
		s.list(w, r, resource, namespace)
	case r.Method == http.MethodGet:
		s.get(w, resource, namespace, name)
	case r.Method == http.MethodPut:
		s.update(w, r, resource, namespace, name)
	case r.Method == http.MethodDelete:
		s.delete(w, resource, namespace, name)
	default:
		writeStatus(w, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource", nil)
	}
}

var groups = map[string]string{"jobs": "batch/v1", "secrets": "v1", "pods": "v1", "events": "v1", "configmaps": "v1",
	"leases": "coordination.k8s.io/v1"}
var kinds = map[string]string{"jobs": "Job", "secrets": "Secret", "pods": "Pod", "events": "Event",
	"configmaps": "ConfigMap", "leases": "Lease"}

// route reads /api/v1/namespaces/NS/RESOURCE[/NAME] and /apis/GROUP/VERSION/namespaces/NS/RESOURCE[/NAME].
func route(path string) (resource, namespace, name string, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 5 && parts[0] == "api" && parts[2] == "namespaces":
		parts = parts[3:]
	case len(parts) >= 6 && parts[0] == "apis" && parts[3] == "namespaces":
		parts = parts[4:]
	default:
		return "", "", "", false
	}
	if _, known := groups[parts[1]]; !known || len(parts) > 3 {
		return "", "", "", false
	}
	if len(parts) == 3 {
		return parts[1], parts[0], parts[2], true
	}
	return parts[1], parts[0], "", true
}

func (s *server) create(w http.ResponseWriter, r *http.Request, resource, namespace string) {
	var body map[string]any
	data, err := io.ReadAll(io.LimitReader(r.Body, 3<<20))
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil {
		writeStatus(w, 400, "BadRequest", "the object provided is unrecognized: "+err.Error(), nil)
		return
	}
	metadata, _ := body["metadata"].(map[string]any)
	name, _ := metadata["name"].(string)
	if name == "" || body["kind"] != kinds[resource] || body["apiVersion"] != groups[resource] {
		writeStatus(w, 422, "Invalid", fmt.Sprintf("%s %q is invalid: metadata.name: Required value", kinds[resource], name),
			nil)
		return
	}
	if ns, set := metadata["namespace"].(string); set && ns != namespace {
		writeStatus(w, 400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request", nil)
		return
	}
	now := time.Now().UTC().Format(time.RFC3339)
	uid := newUID()
	metadata["namespace"] = namespace
	metadata["uid"] = uid
	metadata["creationTimestamp"] = now
	metadata["generation"] = 1
	metadata["managedFields"] = []any{map[string]any{
		"manager": r.URL.Query().Get("fieldManager"), "operation": "Update", "apiVersion": groups[resource],
		"time": now, "fieldsType": "FieldsV1", "fieldsV1": fieldSet(body),
	}}
	labels := map[string]string{}
	if raw, ok := metadata["labels"].(map[string]any); ok {
		for k, v := range raw {
			labels[k], _ = v.(string)
		}
	}
	switch resource {
	case "jobs":
		defaultJob(body, uid)
	case "secrets":
		if stringData, ok := body["stringData"].(map[string]any); ok {
			encoded := map[string]any{}
			for k, v := range stringData {
				text, _ := v.(string)
				encoded[k] = base64.StdEncoding.EncodeToString([]byte(text))
			}
			body["data"] = encoded
			delete(body, "stringData")
		}
		if body["type"] == nil {
			body["type"] = "Opaque"
		}
	}
	key := resource + "/" + namespace + "/" + name
	s.store.mu.Lock()
	if _, exists := s.store.objects[key]; exists {
		s.store.mu.Unlock()
		writeStatus(w, 409, "AlreadyExists", fmt.Sprintf("%s %q already exists", resourceName(resource), name),
			map[string]any{"name": name, "group": groupOnly(resource), "kind": resource})
		return
	}
	metadata["resourceVersion"] = strconv.FormatInt(s.store.revision.Add(1), 10)
	placeholder := &object{resource: resource, namespace: namespace, name: name, labels: labels}
	s.store.objects[key] = placeholder
	s.store.mu.Unlock()
	encoded, _ := json.Marshal(body)
	burnCPU(s.work, encoded)
	time.Sleep(s.writeLatency) // the storage commit; many run at once, as etcd batches them
	s.store.mu.Lock()
	placeholder.encoded = encoded
	s.store.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Audit-Id", newUID())
	w.WriteHeader(201)
	_, _ = w.Write(encoded)
}

// fieldSet is a FieldsV1-shaped summary of the object's fields, as server-side field management records them.
func fieldSet(value any) any {
	switch v := value.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, child := range v {
			if k == "metadata" || k == "apiVersion" || k == "kind" {
				continue
			}
			out["f:"+k] = fieldSet(child)
		}
		return out
	case []any:
		out := map[string]any{}
		for i, child := range v {
			out[fmt.Sprintf("i:%d", i)] = fieldSet(child)
		}
		return out
	default:
		return map[string]any{}
	}
}

// defaultJob sets what the API server's defaulting and the Job registry add to a created Job.
func defaultJob(job map[string]any, uid string) {
	spec, _ := job["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		job["spec"] = spec
	}
	setDefault(spec, "parallelism", 1)
	setDefault(spec, "completions", 1)
	setDefault(spec, "backoffLimit", 6)
	setDefault(spec, "completionMode", "NonIndexed")
	setDefault(spec, "suspend", false)
	setDefault(spec, "podReplacementPolicy", "TerminatingOrFailed")
	selector := map[string]any{"matchLabels": map[string]any{"batch.kubernetes.io/controller-uid": uid}}
	spec["selector"] = selector
	template, _ := spec["template"].(map[string]any)
	if template == nil {
		template = map[string]any{}
		spec["template"] = template
	}
	templateMetadata, _ := template["metadata"].(map[string]any)
	if templateMetadata == nil {
		templateMetadata = map[string]any{}
		template["metadata"] = templateMetadata
	}
	labels, _ := templateMetadata["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
		templateMetadata["labels"] = labels
	}
	labels["batch.kubernetes.io/controller-uid"] = uid
	labels["controller-uid"] = uid
	if name, ok := job["metadata"].(map[string]any)["name"].(string); ok {
		labels["batch.kubernetes.io/job-name"] = name
		labels["job-name"] = name
	}
	podSpec, _ := template["spec"].(map[string]any)
	if podSpec != nil {
		setDefault(podSpec, "terminationGracePeriodSeconds", 30)
		setDefault(podSpec, "dnsPolicy", "ClusterFirst")
		setDefault(podSpec, "schedulerName", "default-scheduler")
		setDefault(podSpec, "securityContext", map[string]any{})
		for _, field := range []string{"containers", "initContainers"} {
			containers, _ := podSpec[field].([]any)
			for _, c := range containers {
				if container, ok := c.(map[string]any); ok {
					setDefault(container, "terminationMessagePath", "/dev/termination-log")
					setDefault(container, "terminationMessagePolicy", "File")
					setDefault(container, "imagePullPolicy", "Always")
					setDefault(container, "resources", map[string]any{})
				}
			}
		}
	}
	job["status"] = map[string]any{}
}

// burnCPU spends d of this thread's CPU time (not wall time: under load a wall-clock spin would cost less CPU and so
// model a cheaper server), hashing the object as an encoder would walk it.
func burnCPU(d time.Duration, data []byte) {
	if d <= 0 {
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	sum := sha256.Sum256(data)
	for threadCPU()-start < d {
		for i := 0; i < 16; i++ {
			sum = sha256.Sum256(sum[:])
		}
	}
}

func threadCPU() time.Duration {
	var usage syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &usage)
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

func setDefault(object map[string]any, key string, value any) {
	if _, set := object[key]; !set {
		object[key] = value
	}
}

func (s *server) list(w http.ResponseWriter, r *http.Request, resource, namespace string) {
	query := r.URL.Query()
	selector := map[string]string{}
	for _, term := range strings.Split(query.Get("labelSelector"), ",") {
		if term == "" {
			continue
		}
		k, v, _ := strings.Cut(term, "=")
		selector[k] = v
	}
	s.store.mu.RLock()
	var keys []string
	scanned := 0
	for key, o := range s.store.objects {
		if o.resource != resource || o.namespace != namespace || o.encoded == nil {
			continue
		}
		scanned++
		matches := true
		for k, v := range selector {
			if o.labels[k] != v {
				matches = false
				break
			}
		}
		if matches {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	offset := 0
	if token := query.Get("continue"); token != "" {
		decoded, err := base64.StdEncoding.DecodeString(token)
		if err == nil {
			offset, err = strconv.Atoi(string(decoded))
		}
		if err != nil || offset > len(keys) {
			s.store.mu.RUnlock()
			writeStatus(w, 400, "BadRequest", "continue key is not valid", nil)
			return
		}
	}
	end := len(keys)
	metadata := map[string]any{"resourceVersion": strconv.FormatInt(s.store.revision.Load(), 10)}
	if limit, _ := strconv.Atoi(query.Get("limit")); limit > 0 && offset+limit < len(keys) {
		end = offset + limit
		metadata["continue"] = base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		metadata["remainingItemCount"] = len(keys) - end
	}
	var items bytes.Buffer
	for i, key := range keys[offset:end] {
		if i > 0 {
			items.WriteByte(',')
		}
		items.Write(s.store.objects[key].encoded)
	}
	s.store.mu.RUnlock()
	// Storage reads the page's objects and every object the selector passed over.
	burnCPU(time.Duration(end-offset+scanned-len(keys))*s.listWork, items.Bytes())
	head, _ := json.Marshal(map[string]any{"kind": kinds[resource] + "List", "apiVersion": groups[resource],
		"metadata": metadata})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	_, _ = w.Write(head[:len(head)-1])
	_, _ = w.Write([]byte(`,"items":[`))
	_, _ = w.Write(items.Bytes())
	_, _ = w.Write([]byte("]}"))
}

func (s *server) get(w http.ResponseWriter, resource, namespace, name string) {
	s.store.mu.RLock()
	o, ok := s.store.objects[resource+"/"+namespace+"/"+name]
	s.store.mu.RUnlock()
	if !ok || o.encoded == nil {
		writeStatus(w, 404, "NotFound", fmt.Sprintf("%s %q not found", resourceName(resource), name),
			map[string]any{"name": name, "group": groupOnly(resource), "kind": resource})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	_, _ = w.Write(o.encoded)
}

func (s *server) update(w http.ResponseWriter, r *http.Request, resource, namespace, name string) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 3<<20))
	var body map[string]any
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil {
		writeStatus(w, 400, "BadRequest", "the object provided is unrecognized", nil)
		return
	}
	key := resource + "/" + namespace + "/" + name
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	o, ok := s.store.objects[key]
	if !ok || o.encoded == nil {
		writeStatus(w, 404, "NotFound", fmt.Sprintf("%s %q not found", resourceName(resource), name), nil)
		return
	}
	var current map[string]any
	_ = json.Unmarshal(o.encoded, &current)
	sent, _ := body["metadata"].(map[string]any)
	if sent["resourceVersion"] != current["metadata"].(map[string]any)["resourceVersion"] {
		writeStatus(w, 409, "Conflict", fmt.Sprintf("Operation cannot be fulfilled on %s %q: the object has been "+
			"modified; please apply your changes to the latest version and try again", resourceName(resource), name), nil)
		return
	}
	sent["resourceVersion"] = strconv.FormatInt(s.store.revision.Add(1), 10)
	sent["uid"] = current["metadata"].(map[string]any)["uid"]
	o.encoded, _ = json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	_, _ = w.Write(o.encoded)
}

func (s *server) delete(w http.ResponseWriter, resource, namespace, name string) {
	key := resource + "/" + namespace + "/" + name
	s.store.mu.Lock()
	o, ok := s.store.objects[key]
	if ok {
		delete(s.store.objects, key)
	}
	s.store.mu.Unlock()
	if !ok || o.encoded == nil {
		writeStatus(w, 404, "NotFound", fmt.Sprintf("%s %q not found", resourceName(resource), name), nil)
		return
	}
	time.Sleep(s.writeLatency)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	_, _ = w.Write(o.encoded)
}

func resourceName(resource string) string {
	if group := groupOnly(resource); group != "" {
		return resource + "." + group
	}
	return resource
}

func groupOnly(resource string) string {
	group, _, found := strings.Cut(groups[resource], "/")
	if !found {
		return ""
	}
	return group
}

func writeStatus(w http.ResponseWriter, code int, reason, message string, details map[string]any) {
	status := map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
		"message": message, "reason": reason, "code": code}
	if details != nil {
		status["details"] = details
	}
	writeJSON(w, code, status)
}

func writeJSON(w http.ResponseWriter, code int, value any) {
	data, _ := json.Marshal(value)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ---- the plain client ----

func client(arguments []string) {
	flags := flag.NewFlagSet("client", flag.ExitOnError)
	url := flags.String("url", "", "the server")
	caFile := flags.String("ca", "", "its CA (PEM)")
	token := flags.String("token", "", "bearer token")
	namespace := flags.String("namespace", "plain", "namespace to write into")
	count := flags.Int("count", 1000, "Jobs (each with a Secret)")
	workers := flags.Int("workers", 200, "concurrent workers, each on its own connection")
	jobFile := flags.String("job", "", "a rendered runner Job (JSON) to create, renamed for each")
	useHTTP2 := flags.Bool("http2", false, "HTTP/2 (one connection per worker) instead of HTTP/1.1")
	first := flags.Int("first", 1, "the first job number")
	_ = flags.Parse(arguments)

	template, err := os.ReadFile(*jobFile)
	if err != nil {
		fail(err)
	}
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		fail(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	jobs := make(chan int, *count)
	for i := 0; i < *count; i++ {
		jobs <- *first + i
	}
	close(jobs)
	var failures atomic.Int64
	var wg sync.WaitGroup
	started := time.Now()
	for w := 0; w < *workers; w++ {
		transport := &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1,
			ForceAttemptHTTP2: *useHTTP2,
		}
		if !*useHTTP2 {
			transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		httpClient := &http.Client{Transport: transport, Timeout: 30 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				if err := createPair(httpClient, *url, *token, *namespace, template, id); err != nil {
					failures.Add(1)
					fmt.Fprintln(os.Stderr, err)
				}
			}
		}()
	}
	wg.Wait()
	seconds := time.Since(started).Seconds()
	fmt.Printf("{\"seconds\": %.4f, \"failures\": %d}\n", seconds, failures.Load())
}

func createPair(c *http.Client, url, token, namespace string, template []byte, id int) error {
	var job map[string]any
	if err := json.Unmarshal(template, &job); err != nil {
		return err
	}
	name := fmt.Sprintf("runner-%d", id)
	metadata := job["metadata"].(map[string]any)
	metadata["name"] = name
	metadata["namespace"] = namespace
	body, _ := json.Marshal(job)
	created, err := post(c, fmt.Sprintf("%s/apis/batch/v1/namespaces/%s/jobs?fieldManager=plain", url, namespace), token, body)
	if err != nil {
		return err
	}
	var answer struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(created, &answer); err != nil {
		return err
	}
	secret, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "immutable": true,
		"metadata": map[string]any{"name": name, "namespace": namespace, "ownerReferences": []any{map[string]any{
			"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": answer.Metadata.UID, "controller": true}}},
		"stringData": map[string]any{"jitconfig": strings.Repeat("x", 1200)},
	})
	_, err = post(c, fmt.Sprintf("%s/api/v1/namespaces/%s/secrets?fieldManager=plain", url, namespace), token, secret)
	return err
}

func post(c *http.Client, url, token string, body []byte) ([]byte, error) {
	request, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	request.Header.Set("Authorization", "Bearer "+token)
	request.Header.Set("Content-Type", "application/json")
	response, err := c.Do(request)
	if err != nil {
		return nil, err
	}
	defer response.Body.Close()
	data, err := io.ReadAll(response.Body)
	if err != nil {
		return nil, err
	}
	if response.StatusCode != 201 {
		return nil, fmt.Errorf("POST %s: %d %s", url, response.StatusCode, data)
	}
	return data, nil
}
