// Student's t by the finite series for integer degrees of freedom (analysis/student_t.h).
#include "analysis/student_t.h"

#include <cmath>
#include <numbers>
#include <string>

#include "io/error.h"

namespace rhead::analysis {

namespace {

// P(|T| < sqrt(df) tan(theta)) for theta in [0, pi/2]: with c = cos(theta), s = sin(theta),
//   odd df:  (2/pi) (theta + s (c + 2/3 c^3 + (2 4)/(3 5) c^5 + ... up to c^(df-2)))
//   even df: s (1 + 1/2 c^2 + (1 3)/(2 4) c^4 + ... up to c^(df-2)).
double central_of_angle(double theta, int df) {
  const double c = std::cos(theta), s = std::sin(theta);
  const bool odd = df % 2 == 1;
  double term = odd ? c : 1.0, sum = 0;
  for (int k = odd ? 3 : 2; k <= df; k += 2) {
    sum += term;
    term *= c * c * (k - 1) / k;
  }
  return odd ? 2.0 / std::numbers::pi * (theta + s * sum) : s * sum;
}

}  // namespace

double student_t_central(double t, int df) {
  if (df < 1) throw Error("student t: degrees of freedom " + std::to_string(df) + " < 1");
  return central_of_angle(std::atan(std::abs(t) / std::sqrt(static_cast<double>(df))), df);
}

double student_t_quantile(double p, int df) {
  if (df < 1) throw Error("student t: degrees of freedom " + std::to_string(df) + " < 1");
  if (!(p > 0 && p < 1)) throw Error("student t: probability " + std::to_string(p) + " is not in (0, 1)");
  if (p == 0.5) return 0.0;
  // The central probability rises monotonically with the angle on [0, pi/2): bisect it there
  // to the last bit, then map the angle back to t.
  const double target = std::abs(2 * p - 1);
  double lo = 0, hi = std::numbers::pi / 2;
  for (int i = 0; i < 200 && hi - lo > 0; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid == lo || mid == hi) break;
    (central_of_angle(mid, df) < target ? lo : hi) = mid;
  }
  const double t = std::sqrt(static_cast<double>(df)) * std::tan(0.5 * (lo + hi));
  return p > 0.5 ? t : -t;
}

}  // namespace rhead::analysis
