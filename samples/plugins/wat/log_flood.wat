;; Hostile: floods the log. The command's first letter picks the flood:
;;   "newlines"  one fd_write to stdout of 64 MiB of newlines (once 285,086 log lines and 81.6 MB of daemon log)
;;   "forever"   fd_write after fd_write of 63 iovecs, each those 64 MiB (just under the 4 GiB one write can report), until
;;               the deadline: the host must stop inside a write, not after it
;;   "log"       a million log calls of one byte each
;;   "empty"     a million log calls of no bytes at all
;; Needs a fuel budget of some 20 million for "log" and "empty", and ample fuel and a deadline for "forever".
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "connectias" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1100) ;; the newlines at 1 MiB, the iovecs at 65 MiB
  (global $heap (mut i32) (i32.const 1024))
  (func (export "connectias_alloc") (param $size i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $size i32.add global.set $heap
    local.get $p)
  (func (export "connectias_free") (param $p i32) (param $size i32)
    local.get $p global.get $heap i32.lt_u (if (then local.get $p global.set $heap)))

  ;; fd_write(stdout, iovecs, count, &written at 16); its errno is the call's result
  (func $write (param $iovecs i32) (param $count i32) (result i32)
    (call $fd_write (i32.const 1) (local.get $iovecs) (local.get $count) (i32.const 16)))

  ;; a million log calls of $length bytes ("x" at 32)
  (func $logs (param $length i32) (local $i i32)
    (i32.store8 (i32.const 32) (i32.const 120))
    (loop $again
      (call $log (i32.const 2) (i32.const 32) (local.get $length))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 1000000)))))

  (func (export "plugin_execute") (param $command i32) (param $command_length i32) (param i32 i32) (result i32)
    (local $letter i32) (local $i i32)
    (local.set $letter (i32.load8_u (local.get $command)))
    (memory.fill (i32.const 0x100000) (i32.const 10) (i32.const 0x4000000))
    (if (i32.eq (local.get $letter) (i32.const 110)) ;; n
      (then
        (i32.store (i32.const 0) (i32.const 0x100000))
        (i32.store (i32.const 4) (i32.const 0x4000000))
        (return (call $write (i32.const 0) (i32.const 1)))))
    (if (i32.eq (local.get $letter) (i32.const 102)) ;; f
      (then
        (loop $fill
          (i32.store (i32.add (i32.const 0x4100000) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0x100000))
          (i32.store (i32.add (i32.const 0x4100004) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0x4000000))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $fill (i32.lt_u (local.get $i) (i32.const 63))))
        (loop $again
          (local.set $i (call $write (i32.const 0x4100000) (i32.const 63)))
          (br_if $again (i32.eqz (local.get $i))))
        (return (local.get $i))))
    (if (i32.eq (local.get $letter) (i32.const 108)) (then (call $logs (i32.const 1)) (return (i32.const 0)))) ;; l
    (if (i32.eq (local.get $letter) (i32.const 101)) (then (call $logs (i32.const 0)) (return (i32.const 0)))) ;; e
    (i32.const 1))
)
