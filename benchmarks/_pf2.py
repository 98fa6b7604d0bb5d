import sys, time, resource, os
sys.path.insert(0, 'benchmarks')
import train_step as ts
def measure(tag, run, n=5):
  r0 = resource.getrusage(resource.RUSAGE_SELF); t = time.perf_counter()
  for _ in range(n): run()
  r1 = resource.getrusage(resource.RUSAGE_SELF)
  print(f'{tag:40s} {(time.perf_counter()-t)/n*1e3:7.0f} ms  minflt/step {(r1.ru_minflt-r0.ru_minflt)/n:9.0f}  sys/step {(r1.ru_stime-r0.ru_stime)/n*1e3:5.0f} ms  user/step {(r1.ru_utime-r0.ru_utime)/n*1e3:5.0f}', flush=True)
m = sys.argv[1]
r = ts.make_jax_step(m, dtype='float32', lowering='after')[0]; r(); r()
measure(m + ' ' + os.environ.get('TAG', ''), r)
