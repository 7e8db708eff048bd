;; Hostile: fd_write with bad arguments; plugin_execute returns fd_write's errno (so a failure is PLUGIN_ERROR with
;; the errno as plugin_code). The command's first letter picks the argument that is wrong:
;;   "fd"       descriptor 5, which does not exist (no file can be opened)     -> 8 EBADF
;;   "stdin"    descriptor 0                                                    -> 8 EBADF
;;   "iovecs"   the iovec array runs past the end of memory                     -> 21 EFAULT
;;   "buffer"   an iovec's buffer runs past the end of memory                   -> 21 EFAULT
;;   "written"  the nwritten pointer runs past the end of memory                -> 21 EFAULT
;;   "count"    a negative iovec count                                          -> 21 EFAULT
;;   "ok"       "h" and "i\n" in two iovecs to stderr: 0, and the output is nwritten (4 bytes, little-endian)
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "connectias" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\64\00\00\00\01\00\00\00\65\00\00\00\02\00\00\00") ;; iovecs {100, 1} {101, 2}
  (data (i32.const 16) "\ff\ff\00\00\02\00\00\00")                          ;; iovec {65535, 2}
  (data (i32.const 100) "hi\n")
  (global $heap (mut i32) (i32.const 1024))
  (func (export "connectias_alloc") (param $size i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $size i32.add global.set $heap
    local.get $p)
  (func (export "connectias_free") (param $p i32) (param $size i32)
    local.get $p global.get $heap i32.lt_u (if (then local.get $p global.set $heap)))
  (func (export "plugin_execute") (param $command i32) (param i32 i32 i32) (result i32) (local $letter i32) (local $errno i32)
    (local.set $letter (i32.load8_u (local.get $command)))
    (if (i32.eq (local.get $letter) (i32.const 102)) (then (return (call $fd_write (i32.const 5) (i32.const 0) (i32.const 2) (i32.const 32))))) ;; f
    (if (i32.eq (local.get $letter) (i32.const 115)) (then (return (call $fd_write (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 32))))) ;; s
    (if (i32.eq (local.get $letter) (i32.const 105)) (then (return (call $fd_write (i32.const 1) (i32.const 65530) (i32.const 1) (i32.const 32))))) ;; i
    (if (i32.eq (local.get $letter) (i32.const 98)) (then (return (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32))))) ;; b
    (if (i32.eq (local.get $letter) (i32.const 119)) (then (return (call $fd_write (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 65534))))) ;; w
    (if (i32.eq (local.get $letter) (i32.const 99)) (then (return (call $fd_write (i32.const 1) (i32.const 0) (i32.const -1) (i32.const 32))))) ;; c
    (local.set $errno (call $fd_write (i32.const 2) (i32.const 0) (i32.const 2) (i32.const 32)))
    (call $output (i32.const 32) (i32.const 4))
    (local.get $errno))
)
