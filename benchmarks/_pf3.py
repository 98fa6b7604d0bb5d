import ctypes, os
libc = ctypes.CDLL('libc.so.6')
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
if os.environ.get('MALLOPT'):
  print('mallopt', libc.mallopt(M_ARENA_MAX, 1), libc.mallopt(M_MMAP_THRESHOLD, 2**31 - 1 if False else 1 << 30), libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
exec(open('benchmarks/_pf2.py').read())
