;; Hostile: asks for 1 GiB more memory in one growth, ignores the answer, and fills 1 GiB with one memory.fill.
;; Under a memory limit the growth is refused, so the fill runs off the end of the one page it has.
(module
  (memory (export "memory") 1)
  (func (export "connectias_alloc") (param $size i32) (result i32) i32.const 1024)
  (func (export "plugin_execute") (param i32 i32 i32 i32) (result i32)
    (drop (memory.grow (i32.const 16384)))
    (memory.fill (i32.const 0) (i32.const 0xab) (i32.const 0x40000000))
    i32.const 0))
