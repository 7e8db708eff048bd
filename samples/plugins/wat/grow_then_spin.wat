;; Hostile: a growth past its limit is refused (memory.grow returns -1); it carries on as if nothing happened and
;; spins. The refusal, not its timeout, must end the call.
(module
  (memory (export "memory") 1)
  (func (export "connectias_alloc") (param $size i32) (result i32) i32.const 1024)
  (func (export "plugin_execute") (param i32 i32 i32 i32) (result i32)
    (drop (memory.grow (i32.const 4096)))
    (loop $spin (br $spin))
    i32.const 0))
