;; Hostile: fails every call with a 64 KiB error message (the most the runtime keeps), which must not break the
;; caller's HTTP/2 connection when it travels back in the gRPC status.
(module
  (import "connectias" "error" (func $error (param i32 i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 70000))
  (func (export "connectias_alloc") (param $size i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $size i32.add global.set $heap
    local.get $p)
  (func (export "plugin_execute") (param i32 i32 i32 i32) (result i32) (local $i i32)
    ;; 65536 bytes of 'x' from offset 1024
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (i32.const 65536)))
        (i32.store8 (i32.add (i32.const 1024) (local.get $i)) (i32.const 120))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (call $error (i32.const 1024) (i32.const 65536))
    i32.const 1))
