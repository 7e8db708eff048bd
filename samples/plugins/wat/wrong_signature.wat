;; Broken: plugin_execute takes one parameter instead of four.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "connectias_alloc") (param $size i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $size i32.add global.set $heap
    local.get $p)
  (func (export "connectias_free") (param $p i32) (param $size i32)
    local.get $p global.get $heap i32.lt_u (if (then local.get $p global.set $heap)))
  (func (export "plugin_execute") (param i32) (result i32) i32.const 0))
