// The Go example plugins: one module, standard library only, so it builds offline (scripts/build-go-plugins).
module stephost.example/goplugins

go 1.19
