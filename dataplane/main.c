/* main.c: ampd, the AMP settlement daemon. See ampd_app.c. */
#include "ampd_app.h"

int main(int argc, char **argv) { return ampd_run(argc, argv, 0); }
