// An API server-like peer for the burst benchmark: the subset of the Kubernetes API that kube-actions-runner
// calls, served the way kube-apiserver serves it, so that the time a burst spends between the service and its API
// server can be measured here (the Python fakes answer from one event loop with no work per request).
//
// What it shares with kube-apiserver: Go's HTTP/2 server over TLS (one reader per connection, handlers in parallel
// goroutines, a per-connection stream limit), bearer-token authentication on every request, a bound on mutating
// requests in flight that queues the rest (as the max-in-flight filter / API Priority and Fairness do), real work per
// request (decode, validate, default, add metadata with managedFields, encode, store, answer with the whole object),
// and a storage write latency (etcd's commit) that runs in parallel across requests.
//
// Mutating requests take a seat of `-max-mutating-inflight`; the rest wait in fair queues, one per user, served in
// turn (API Priority and Fairness: flows distinguished by user, as the `service-accounts` FlowSchema does). A request
// waits at most a quarter of its deadline (its `?timeout=`, else the server's 60 s), capped by `-queue-wait`, and is
// then rejected with 429 and `Retry-After: 1`; a client that gives up while queued (HTTP/2 RST_STREAM) leaves the
// queue without a write. Once seated, a write completes even when its client has gone, as a write that reached
// storage does on a real API server: the peer counts those (`unseen_writes`), and the 409s.
//
// With `-job-controller`, each created Job gets a pod a moment later (`-controller-delay`), written through the same
// seats, queues and work by another user (the Job controller), after decoding the Job as its watch delivers it; then
// `-pod-writes` more writes of that pod (the scheduler's binding, the kubelet's status), by the same other user.
// What it leaves out: admission webhooks, the watch cache's fan-out to other watchers, etcd's own CPU.
//
//	apiserver serve -cert C -key K -token T [-max-streams 250] [-max-mutating-inflight 200] [-queue-wait 15s]
//	                [-write-latency 2ms] [-work 0] [-job-controller] [-controller-delay 10ms] [-pod-writes 2]
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
	token           string
	store           *store
	mutating        *fairQueue
	readonly        chan struct{}
	queueWait       time.Duration
	writeLatency    time.Duration
	work            time.Duration
	listWork        time.Duration
	jobController   bool
	controllerDelay time.Duration
	podWrites       int
	requests        atomic.Int64
	maxInFlight     atomic.Int64
	inFlight        atomic.Int64
	alreadyExists   atomic.Int64 // creates answered 409 AlreadyExists
	unseenWrites    atomic.Int64 // writes that completed after their client had gone (timed out, reset the stream)
	queueRejected   atomic.Int64 // 429s: waited in the queue past the wait limit
	queueAbandoned  atomic.Int64 // clients that gave up while queued (no write)
	maxQueueWait    atomic.Int64 // nanoseconds
	pods            atomic.Int64 // pods the Job controller created
	controllerRetry atomic.Int64 // the Job controller's writes that were rejected and retried
	controllerBusy  atomic.Int64 // Jobs whose pod and its writes are not done yet
	createdJobs     atomic.Int64
	createdSecrets  atomic.Int64
}

func serve(arguments []string) {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	cert := flags.String("cert", "", "server certificate (PEM)")
	key := flags.String("key", "", "server key (PEM)")
	token := flags.String("token", "", "the bearer token every request must carry")
	listen := flags.String("listen", "127.0.0.1:0", "address")
	maxStreams := flags.Int("max-streams", 250, "concurrent HTTP/2 streams per connection (Go's default)")
	maxMutating := flags.Int("max-mutating-inflight", 200, "seats: mutating requests served at once; more wait in "+
		"fair queues, one per user (kube-apiserver's default)")
	queueWait := flags.Duration("queue-wait", 15*time.Second, "the longest a request waits for a seat, then 429 "+
		"(a quarter of kube-apiserver's 60 s request timeout; less when the request's ?timeout= is shorter)")
	jobController := flags.Bool("job-controller", false, "create a pod for each created Job, as the Job controller does")
	controllerDelay := flags.Duration("controller-delay", 10*time.Millisecond, "from a Job's creation to its pod's create")
	podWrites := flags.Int("pod-writes", 2, "writes of each pod after its creation (the scheduler's binding, the "+
		"kubelet's status), with -job-controller")
	maxReadonly := flags.Int("max-readonly-inflight", 400, "read-only requests served at once; more wait (kube-apiserver's default)")
	writeLatency := flags.Duration("write-latency", 2*time.Millisecond, "storage commit time of each write")
	listWork := flags.Duration("list-work", 0, "CPU time a list costs per object it reads: the page's objects and "+
		"those its label selector passed over (storage filters after reading, as the API server's does)")
	work := flags.Duration("work", 0, "CPU time each write costs besides decoding and encoding (admission, validation, "+
		"conversion, audit, the watch cache: about 2.5ms on a real API server, see BENCHMARKS.md)")
	_ = flags.Parse(arguments)

	s := &server{
		token: *token, store: &store{objects: map[string]*object{}},
		mutating: newFairQueue(*maxMutating), readonly: make(chan struct{}, *maxReadonly), queueWait: *queueWait,
		writeLatency: *writeLatency, work: *work, listWork: *listWork,
		jobController: *jobController, controllerDelay: *controllerDelay, podWrites: *podWrites,
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
			"max_in_flight": s.maxInFlight.Load(), "objects": count, "already_exists": s.alreadyExists.Load(),
			"unseen_writes": s.unseenWrites.Load(), "queue_rejected": s.queueRejected.Load(),
			"queue_abandoned": s.queueAbandoned.Load(), "max_queue_wait_ms": s.maxQueueWait.Load() / 1e6,
			"pods": s.pods.Load(), "controller_retries": s.controllerRetry.Load(),
			"controller_busy": s.controllerBusy.Load(), "jobs": s.createdJobs.Load(),
			"secrets": s.createdSecrets.Load()})
		if r.URL.Query().Get("reset") == "max" {
			s.maxQueueWait.Store(0)
			s.maxInFlight.Store(0)
		}
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
	if r.Method == http.MethodGet {
		select {
		case s.readonly <- struct{}{}:
			defer func() { <-s.readonly }()
		case <-r.Context().Done():
			return
		}
	} else {
		wait := s.queueWait
		if timeout, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && timeout/4 < wait {
			wait = timeout / 4
		}
		switch s.seat(r.Context(), "sa:"+s.token, wait) {
		case seated:
			defer s.mutating.release()
		case rejected:
			w.Header().Set("Retry-After", "1")
			writeStatus(w, 429, "TooManyRequests", "Too many requests, please try again later.", nil)
			return
		case abandoned:
			return
		}
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
	code, encoded := s.createObject(resource, namespace, r.URL.Query().Get("fieldManager"), body)
	if code == 409 {
		s.alreadyExists.Add(1)
	}
	if r.Context().Err() != nil && code == 201 {
		s.unseenWrites.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Audit-Id", newUID())
	w.WriteHeader(code)
	_, _ = w.Write(encoded)
}

// createObject is the write path of a create: validate, default, add metadata, encode, work, commit. It answers the
// status code and the body (the object, or a Status).
func (s *server) createObject(resource, namespace, manager string, body map[string]any) (int, []byte) {
	metadata, _ := body["metadata"].(map[string]any)
	name, _ := metadata["name"].(string)
	if name == "" || body["kind"] != kinds[resource] || body["apiVersion"] != groups[resource] {
		return 422, statusBody(422, "Invalid", fmt.Sprintf("%s %q is invalid: metadata.name: Required value",
			kinds[resource], name), nil)
	}
	if ns, set := metadata["namespace"].(string); set && ns != namespace {
		return 400, statusBody(400, "BadRequest", "the namespace of the provided object does not match the namespace "+
			"sent on the request", nil)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	uid := newUID()
	metadata["namespace"] = namespace
	metadata["uid"] = uid
	metadata["creationTimestamp"] = now
	metadata["generation"] = 1
	metadata["managedFields"] = []any{map[string]any{
		"manager": manager, "operation": "Update", "apiVersion": groups[resource],
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
		return 409, statusBody(409, "AlreadyExists", fmt.Sprintf("%s %q already exists", resourceName(resource), name),
			map[string]any{"name": name, "group": groupOnly(resource), "kind": resource})
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
	switch resource {
	case "jobs":
		s.createdJobs.Add(1)
	case "secrets":
		s.createdSecrets.Add(1)
	}
	if resource == "jobs" && s.jobController {
		s.controllerBusy.Add(1)
		go s.runJob(namespace, encoded)
	}
	return 201, encoded
}

// ---- the Job controller ----

// runJob is the Job controller's answer to a Job's creation: decode the Job as the watch delivers it, create its pod
// from the template, then the pod's later writes, each through the seats and queues as the "job-controller" user, and
// retried after a rejection as a controller's work queue does.
func (s *server) runJob(namespace string, encoded []byte) {
	defer s.controllerBusy.Add(-1)
	time.Sleep(s.controllerDelay)
	var job map[string]any
	if json.Unmarshal(encoded, &job) != nil {
		return
	}
	metadata, _ := job["metadata"].(map[string]any)
	spec, _ := job["spec"].(map[string]any)
	template, _ := spec["template"].(map[string]any)
	podMetadata, _ := template["metadata"].(map[string]any)
	jobName, _ := metadata["name"].(string)
	suffix := newUID()[:5]
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
		"metadata": map[string]any{"name": jobName + "-" + suffix, "namespace": namespace,
			"labels": podMetadata["labels"], "annotations": podMetadata["annotations"],
			"ownerReferences": []any{map[string]any{"apiVersion": "batch/v1", "kind": "Job", "name": jobName,
				"uid": metadata["uid"], "controller": true, "blockOwnerDeletion": true}}}}
	var podEncoded []byte
	s.asController(func() { _, podEncoded = s.createObject("pods", namespace, "kube-controller-manager", pod) })
	s.pods.Add(1)
	for i := 0; i < s.podWrites; i++ {
		s.asController(func() {
			var current map[string]any
			_ = json.Unmarshal(podEncoded, &current)
			current["status"] = map[string]any{"phase": "Pending", "conditions": []any{map[string]any{
				"type": "PodScheduled", "status": "True", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}}}
			podEncoded, _ = json.Marshal(current)
			burnCPU(s.work, podEncoded)
			time.Sleep(s.writeLatency)
		})
	}
}

// asController runs write with a seat taken as the controller's user, waiting and retrying as long as it takes.
func (s *server) asController(write func()) {
	for s.seat(context.Background(), "job-controller", s.queueWait) != seated {
		s.controllerRetry.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
	defer s.mutating.release()
	write()
}

// ---- the seats and their fair queues ----

type seating int

const (
	seated seating = iota
	rejected
	abandoned
)

// seat takes a mutating seat for flow, waiting at most wait in its queue; it records the wait and the outcome.
func (s *server) seat(ctx context.Context, flow string, wait time.Duration) seating {
	started := time.Now()
	outcome := s.mutating.acquire(ctx, flow, wait)
	waited := int64(time.Since(started))
	for {
		seen := s.maxQueueWait.Load()
		if waited <= seen || s.maxQueueWait.CompareAndSwap(seen, waited) {
			break
		}
	}
	switch outcome {
	case rejected:
		s.queueRejected.Add(1)
	case abandoned:
		s.queueAbandoned.Add(1)
	}
	return outcome
}

// fairQueue is a seat count with a FIFO queue per flow; a freed seat goes to the next flow in turn that has a waiter.
type fairQueue struct {
	mu     sync.Mutex
	seats  int
	used   int
	queues map[string][]*waiter
	flows  []string // the order flows are served in
	next   int
}

type waiter struct{ granted chan struct{} }

func newFairQueue(seats int) *fairQueue {
	return &fairQueue{seats: seats, queues: map[string][]*waiter{}}
}

func (q *fairQueue) acquire(ctx context.Context, flow string, wait time.Duration) seating {
	q.mu.Lock()
	if q.used < q.seats && q.waiting() == 0 {
		q.used++
		q.mu.Unlock()
		return seated
	}
	w := &waiter{granted: make(chan struct{})}
	if _, known := q.queues[flow]; !known {
		q.flows = append(q.flows, flow)
	}
	q.queues[flow] = append(q.queues[flow], w)
	q.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	outcome := seated
	select {
	case <-w.granted:
		return seated
	case <-timer.C:
		outcome = rejected
	case <-ctx.Done():
		outcome = abandoned
	}
	q.mu.Lock()
	select {
	case <-w.granted: // granted meanwhile: hand the seat on
		q.mu.Unlock()
		q.release()
		return outcome
	default:
		queue := q.queues[flow]
		for i, other := range queue {
			if other == w {
				q.queues[flow] = append(queue[:i:i], queue[i+1:]...)
				break
			}
		}
	}
	q.mu.Unlock()
	return outcome
}

func (q *fairQueue) waiting() int {
	n := 0
	for _, queue := range q.queues {
		n += len(queue)
	}
	return n
}

func (q *fairQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for range q.flows {
		flow := q.flows[q.next%len(q.flows)]
		q.next++
		if queue := q.queues[flow]; len(queue) > 0 {
			q.queues[flow] = queue[1:]
			close(queue[0].granted) // the seat passes to it
			return
		}
	}
	q.used--
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
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(statusBody(code, reason, message, details))
}

func statusBody(code int, reason, message string, details map[string]any) []byte {
	status := map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
		"message": message, "reason": reason, "code": code}
	if details != nil {
		status["details"] = details
	}
	data, _ := json.Marshal(status)
	return data
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
