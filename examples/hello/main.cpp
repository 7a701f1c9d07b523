// The course's microservice, in C++: GET /hello answers "Hello World!".
#include "squadron/service/service.hpp"

int main(int argc, char** argv) {
  squadron::Service app{"hello"};
  app.get("/hello", [](const squadron::Request&) { return "Hello World!"; });
  return app.run(argc, argv);
}
