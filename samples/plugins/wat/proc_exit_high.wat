;; Hostile: calls WASI proc_exit with a code of 126 or more (which WASI itself would treat as an invalid exit
;; status): still a crash of the plugin, PLUGIN_CRASHED with the code, not a trap.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "connectias_alloc") (param $size i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $size i32.add global.set $heap
    local.get $p)
  (func (export "plugin_execute") (param i32 i32 i32 i32) (result i32) (call $exit (i32.const 200)) i32.const 0))
