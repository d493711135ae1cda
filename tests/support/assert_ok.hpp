// Assertions on xfp::Result / xfp::Status that print the error's message
// (with the expression) when they fail.
#pragma once

#include <gtest/gtest.h>

#define XFP_ASSERT_OK(expr)                                                           \
  do {                                                                                \
    const auto& xfp_assert_ok_r_ = (expr);                                            \
    ASSERT_TRUE(xfp_assert_ok_r_.ok()) << #expr << ": " << xfp_assert_ok_r_.error().message; \
  } while (0)

#define XFP_EXPECT_OK(expr)                                                           \
  do {                                                                                \
    const auto& xfp_expect_ok_r_ = (expr);                                            \
    EXPECT_TRUE(xfp_expect_ok_r_.ok()) << #expr << ": " << xfp_expect_ok_r_.error().message; \
  } while (0)
