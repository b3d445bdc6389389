#include <stdio.h>
int main(void) {
    fprintf(stderr, "newsalert-consumer: under construction\n");
    return 1;
}
