# The Welch tests of experiments/tuned-verdicts.md ("Round 3: the 2-seed verdicts tested"), from the
# committed 2-seed reports' mean ± sample sd (n = 2 per arm). Run with scipy (see README.md).
from scipy import stats
import math
def w(name, m1,s1,m2,s2,n=2):
    r=stats.ttest_ind_from_stats(m1,s1,n,m2,s2,n,equal_var=False)
    se=math.sqrt(s1**2/n+s2**2/n); df=se**4/((s1**2/n)**2/(n-1)+(s2**2/n)**2/(n-1))
    h=stats.t.ppf(0.975,df)*se; d=m1-m2
    print(f"| {name} | {d:+.2f} points [{d-h:+.2f}, {d+h:+.2f}] | p = {r.pvalue:.3f} | Welch, df {df:.1f} |")
print("smallcnn wide vs adamw 49.25 ± 0.21")
for n,m,s in [("sgd-momentum",44.67,0.53),("rf-rmsprop",47.17,1.31),("if-shampoo",46.35,1.63),("gam-sgd",40.00,1.06)]: w(n,m,s,49.25,0.21)
print("vit wide vs adamw 45.33 ± 1.52")
for n,m,s in [("rf-rmsprop",39.02,1.24),("if-shampoo",39.68,0.81)]: w(n,m,s,45.33,1.52)
print("gam vs sgd-momentum (smallcnn wide)"); w("gam-sgd",40.00,1.06,44.67,0.53)
print("rf vs if (smallcnn wide)"); w("if-shampoo",46.35,1.63,47.17,1.31)
print("plrs vs cosine"); w("sgd-plrs",47.85,7.92,56.38,0.39)
