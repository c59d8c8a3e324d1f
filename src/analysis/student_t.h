// Student's t distribution with an integer number of degrees of freedom: the two-sided
// central probability and its inverse, exact up to rounding (the finite series of
// Abramowitz & Stegun 26.7.3 and 26.7.4 in the angle atan(t / sqrt(df))), for the small-sample
// intervals of analysis/head_stats.h. No dependency beyond <cmath>.
#pragma once

namespace rhead::analysis {

// P(|T| < t) for T ~ Student t with `df` >= 1 degrees of freedom and t >= 0.
double student_t_central(double t, int df);
// The quantile t_{p, df}: P(T <= t) = p, for p in (0, 1) and df >= 1 (t_{0.975, 1} = 12.7062...).
// rhead::Error for p outside (0, 1) or df < 1.
double student_t_quantile(double p, int df);

}  // namespace rhead::analysis
