module kube-actions-runner/benchmarks/apiserver

go 1.24
