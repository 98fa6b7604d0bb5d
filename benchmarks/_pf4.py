import sys, time, resource, os
sys.path.insert(0, 'benchmarks')
import train_step as ts
m = sys.argv[1]; n = int(sys.argv[2])
r = ts.make_jax_step(m, dtype='float32', lowering='after')[0]; r(); r()
r0 = resource.getrusage(resource.RUSAGE_SELF); t = []
for _ in range(n):
  s = time.perf_counter(); r(); t.append(time.perf_counter() - s)
r1 = resource.getrusage(resource.RUSAGE_SELF)
import statistics
print(f'{m:11s} thp={os.environ.get("GLIBC_TUNABLES","")[-1:] or "-"} median {statistics.median(t)*1e3:6.0f} ms  min {min(t)*1e3:6.0f}  faults/step {(r1.ru_minflt-r0.ru_minflt)/n:8.0f}  sys/step {(r1.ru_stime-r0.ru_stime)/n*1e3:4.0f} ms', flush=True)
