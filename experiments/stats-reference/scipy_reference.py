# Prints the reference values that crates/ember-lab/src/report/stats.rs tests against (see README.md).
import numpy as np
from scipy import stats
print("t975 df=4", stats.t.ppf(0.975, 4))
a=[0.512,0.498,0.530,0.505,0.521]; b=[0.490,0.487,0.501,0.495,0.499]
r=stats.ttest_rel(a,b); ci=r.confidence_interval(0.95); print("paired", np.mean(np.subtract(a,b)), r.pvalue, ci.low, ci.high)
x=[1.2,1.5,1.1,1.9,1.4]; y=[1.0,1.05,0.98,1.02]
r=stats.ttest_ind(x,y,equal_var=False); ci=r.confidence_interval(0.95); print("welch", np.mean(x)-np.mean(y), r.pvalue, ci.low, ci.high, r.df)
v=[0.41,0.44,0.39,0.45,0.42]; m=np.mean(v); h=stats.t.ppf(0.975,4)*np.std(v,ddof=1)/np.sqrt(5); print("ci", m, m-h, m+h)
