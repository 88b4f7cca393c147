// Boost.Asio and Boost.Beast compiled once here instead of in every
// translation unit (BOOST_ASIO_SEPARATE_COMPILATION): cuts build time on the
// 2-core machines this project is built on.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
