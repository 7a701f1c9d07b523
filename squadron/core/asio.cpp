// The one translation unit that compiles Boost.Asio and Boost.Beast (separate compilation):
// every other file includes their headers with BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION defined by the squadron::asio target.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
